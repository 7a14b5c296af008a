"""The `leadbot` command: run (everything), web, worker, flows, roster, dnc, users."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

from pydantic import ValidationError

from bot.runtime.supervisor import VALKEY_STOP_S, WEB_STOP_S, WORKER_STOP_S, procfile
from bot.settings import ROOT, ConfigError, Settings


def roster_ok(settings: Settings) -> bool:
    """Start only with a roster that loads: without one, every qualified lead would go nowhere."""
    from handoff.roster import RosterError, load_roster

    try:
        load_roster(settings.roster_path, settings.default_region)
    except RosterError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"leadbot: not starting: the roster {settings.roster_path} has {len(exc.errors)} error(s); "
              "fix it (check with `leadbot roster check`) or set ROSTER_PATH", file=sys.stderr)
        return False
    return True


def cmd_run(_args: argparse.Namespace) -> int:
    """Start Valkey (embedded by default), the workers and web from the Procfile; stop them in reverse."""
    from bot.runtime import dev_defaults
    from bot.runtime.supervisor import AlreadyRunning, Supervisor, single_instance

    settings = Settings()
    settings.check()
    if not roster_ok(settings):
        return 2
    try:
        with single_instance(settings.data_dir):
            if not _port_free(settings.host, settings.port):
                print(f"leadbot: {settings.host}:{settings.port} is in use by another program; set PORT "
                      "or stop it", file=sys.stderr)
                return 1
            sup = Supervisor(dict(os.environ), ROOT)
            sup.install_signals()
            try:
                return _run(sup, settings, dev_defaults)
            finally:
                sup.stop()
    except AlreadyRunning as exc:
        print(f"leadbot: {exc}", file=sys.stderr)
        return 1


def _run(sup, settings: Settings, dev_defaults) -> int:  # noqa: ANN001
    """Valkey, then the workers, then web; then wait for a signal."""
    env = sup.env
    if not settings.redis_url and not settings.production:
        keeper = sup.spawn("valkey", [sys.executable, "-m", "bot.runtime.embedded_valkey",
                                      str(settings.data_dir / "valkey")], VALKEY_STOP_S,
                           stdout=subprocess.PIPE)
        env["REDIS_URL"] = keeper.stdout.readline().decode().strip()
        if not env["REDIS_URL"]:
            print("leadbot: the embedded Valkey did not start", file=sys.stderr)
            return 1
    if sup.stopping.is_set():
        return 0
    settings = dev_defaults.apply(settings.model_copy(update={"redis_url": env.get("REDIS_URL")}))
    env.setdefault("LEAD_API_KEYS", settings.lead_api_keys or "")
    env.setdefault("SECRET_KEY", settings.secret_key or "")
    env.setdefault("PUBLIC_BASE_URL", settings.base_url)
    # The children find gunicorn and leadbot in this interpreter's bin directory.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    print(f"leadbot: web on {settings.base_url}  (simulator: {settings.base_url}/simulator/)", flush=True)
    from console.accounts import ensure_dev_admin

    admin = ensure_dev_admin(settings)
    if admin is not None:
        print(f"leadbot: console {settings.base_url}/console/  log in as {admin[0]} / {admin[1]}  "
              f"(development admin; its password is in {settings.data_dir / 'console_admin_password'})",
              flush=True)
    print(f"leadbot: redis {env['REDIS_URL']}  db {settings.db_url}", flush=True)
    if not settings.production:
        print(f"leadbot: dev API key {settings.api_keys[0]}", flush=True)
    commands = procfile(ROOT / "Procfile")
    sup.shell("worker", commands["worker"], WORKER_STOP_S)
    sup.shell("web", commands["web"], WEB_STOP_S)
    return sup.wait()


def _port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a second run would half-start on a busy port)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def cmd_worker(args: argparse.Namespace) -> int:
    """Run RQ worker(s) with the scheduler and the sweeper."""
    from bot.jobs import worker
    from bot.runtime import dev_defaults

    settings = dev_defaults.apply(Settings())
    if not roster_ok(settings):
        return 2
    os.environ["REDIS_URL"] = settings.redis_url or ""
    worker.run(settings, processes=args.processes, burst=args.burst)
    return 0


def cmd_flows(args: argparse.Namespace) -> int:
    """Delegate to the flow tools (check, try); `check` also validates the calling rules."""
    from bot.flows.cli import flows_dir
    from bot.flows.cli import main as flows_main

    rest = list(args.rest)
    if rest[:1] != ["check"]:
        return flows_main(rest)
    from bot.compliance.rules import RULES_FILE, load_rules
    from bot.flows.cadence import CADENCE_FILE

    files = [a for a in rest[1:] if not a.startswith("-")]
    rules = [f for f in files if os.path.basename(f) == RULES_FILE]
    flows = [f for f in files if os.path.basename(f) != RULES_FILE]
    code = flows_main(["check", *flows]) if flows or not files else 0
    code = max(code, _cadence_teams([f for f in flows if os.path.basename(f) == CADENCE_FILE]
                                    or ([] if files else [flows_dir() / CADENCE_FILE])))
    default = flows_dir() / RULES_FILE
    for path in rules or ([] if files or not default.exists() else [os.path.relpath(default)]):
        table, errors = load_rules(path)
        for error in errors:
            print(error)
        if table is None:
            print(f"{len(errors)} error(s) in {path}")
            code = 1
        else:
            print(f"OK: {path}: federal window, {len(table.states)} state rule(s), "
                  f"{len(table.countries)} country rule(s), {len(table.holidays)} holiday(s)")
    return code


def _cadence_teams(paths: list) -> int:  # noqa: ANN001 - str or Path
    """The cadence file's `teams:` must name teams of the roster (a typo would silently mean `default`)."""
    from pathlib import Path

    from bot.flows.cadence import unknown_teams
    from bot.flows.cli import shown_path
    from handoff.roster import RosterError, load_roster

    settings = Settings()
    try:
        roster = load_roster(settings.roster_path, settings.default_region)
    except RosterError:  # `leadbot roster check` reports the roster's own errors
        return 0
    names = {team.name for team in roster.teams}
    errors = [err for p in paths if Path(p).exists()
              for err in unknown_teams(shown_path(Path(p)), names, os.path.relpath(settings.roster_path))]
    for error in errors:
        print(error)
    return 1 if errors else 0


def cmd_dnc(args: argparse.Namespace) -> int:
    """`leadbot dnc import FILE.csv` adds numbers to the opt-outs; `leadbot dnc export` writes them all."""
    import csv

    from bot.compliance import optout
    from bot.store import database as db

    settings = Settings()
    engine = db.make_engine(settings.db_url)
    db.init_db(engine)
    try:
        with db.make_sessionmaker(engine)() as s:
            if args.action == "export":
                out = open(args.file, "w", newline="") if args.file else sys.stdout  # noqa: SIM115
                count = optout.export_dnc(s, out)
                if args.file:
                    out.close()
                print(f"exported {count} number(s)", file=sys.stderr)
                return 0
            if not args.file:
                print("leadbot dnc import: give the CSV file to import", file=sys.stderr)
                return 2
            try:
                with open(args.file, newline="", encoding="utf-8-sig") as f:
                    report = optout.import_dnc(s, csv.reader(f), settings.default_region, args.source)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                print(f"leadbot dnc import: cannot read {args.file}: {exc}", file=sys.stderr)
                return 2
            s.commit()
    finally:
        engine.dispose()
    for line in report.errors:
        print(f"{args.file}: {line}", file=sys.stderr)
    print(f"imported {report.added} new number(s), {report.present} already on the list, "
          f"{len(report.errors)} unreadable row(s)", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_roster(args: argparse.Namespace) -> int:
    """`leadbot roster check [FILE]`: validate the sales roster the way `flows check` does flows."""
    from handoff.roster_cache import check_file

    settings = Settings()
    path = args.file or os.path.relpath(settings.roster_path)
    return check_file(path, settings.default_region, sys.stdout)


def cmd_leads_import(args: argparse.Namespace) -> int:
    """Import a CSV of leads; 1 when any row had errors."""
    from pathlib import Path

    from bot.runtime import dev_defaults
    from bot.runtime.services import build_services
    from bot.sources.backfill import import_csv
    from bot.sources.mapping import load_sources

    settings = dev_defaults.apply(Settings())
    entry = None
    if args.mapping:
        entry = load_sources(settings.sources_path).get(args.mapping)
        if entry is None:
            print(f"no entry {args.mapping!r} in {settings.sources_path}", file=sys.stderr)
            return 2
    svc = build_services(settings)
    try:
        report = import_csv(svc, Path(args.file), args.source, entry, args.dry_run, sys.stdout)
    finally:
        svc.close()
    return 1 if report.errors else 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    """Replay a CRM webhook delivery now (and queue its retries if it fails again)."""
    from bot.jobs.webhooks import attempt
    from bot.runtime import crm, dev_defaults
    from bot.runtime.services import build_services
    from bot.store.source_tables import DeliveryStatus, WebhookDelivery

    svc = build_services(dev_defaults.apply(Settings()))
    try:
        with svc.sessions() as s:
            d = s.get(WebhookDelivery, args.id)
            if d is None:
                print(f"no webhook delivery {args.id}", file=sys.stderr)
                return 2
            d.status = DeliveryStatus.PENDING  # replay resends even a delivered event
            s.commit()
        result = attempt(svc, args.id)
        with svc.sessions() as s:
            d = s.get_one(WebhookDelivery, args.id)
            print(f"{args.id}: {result} (HTTP {d.last_status_code}, attempt {d.attempts})"
                  + (f": {d.last_error}" if d.last_error else ""))
            if result != "delivered":
                d.status = DeliveryStatus.PENDING
                s.commit()
                crm.enqueue_delivery(svc, args.id)
                print("queued for retries with back-off")
        return 0 if result == "delivered" else 1
    finally:
        svc.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `leadbot` console script."""
    parser = argparse.ArgumentParser(prog="leadbot", description="Instant lead callback bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start web + worker with embedded defaults").set_defaults(func=cmd_run)
    w = sub.add_parser("worker", help="run job workers (non-forking) with scheduler and sweeper")
    w.add_argument("--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", "8")))
    w.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    w.set_defaults(func=cmd_worker)
    f = sub.add_parser("flows", help="check or try the flow scripts in ivr_flows/")
    f.add_argument("rest", nargs=argparse.REMAINDER)
    f.set_defaults(func=cmd_flows)
    r = sub.add_parser("roster", help="check the sales roster (ROSTER_PATH or handoff/roster.yaml)")
    r.add_argument("action", choices=["check"])
    r.add_argument("file", nargs="?", help="a roster file (default: ROSTER_PATH)")
    r.set_defaults(func=cmd_roster)
    d = sub.add_parser("dnc", help="import or export the do-not-contact (opt-out) list as CSV")
    d.add_argument("action", choices=["import", "export"])
    d.add_argument("file", nargs="?", help="CSV to read (import) or write (export; default stdout)")
    d.add_argument("--source", default="dnc import", help="recorded as the opt-out's source")
    d.set_defaults(func=cmd_dnc)
    leads = sub.add_parser("leads", help="lead tools").add_subparsers(dest="leads_command", required=True)
    imp = leads.add_parser("import", help="import a CSV of leads (good rows in, bad rows reported by line)")
    imp.add_argument("file")
    imp.add_argument("--source", required=True, help="the source name recorded on each lead")
    imp.add_argument("--mapping", help="a sources.yaml entry whose field mapping reads the columns")
    imp.add_argument("--dry-run", action="store_true", help="validate and report only")
    imp.set_defaults(func=cmd_leads_import)
    hooks = sub.add_parser("webhooks", help="CRM webhooks").add_subparsers(dest="webhooks_command",
                                                                          required=True)
    replay = hooks.add_parser("replay", help="resend one delivery (ids in GET /reports/webhook-deliveries)")
    replay.add_argument("id")
    replay.set_defaults(func=cmd_webhooks)
    from console.accounts import add_parser

    add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValidationError) as exc:  # a bad environment: say what, without a traceback
        print(f"leadbot: cannot start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
