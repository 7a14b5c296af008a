"""Console page latency with many leads in the database (issue #15: p95 under 100 ms at 100,000).

Seeds a fresh SQLite file (or --database-url, e.g. a PostgreSQL database that will be emptied), starts
gunicorn on the embedded Valkey, logs in, and requests each page sequentially.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Stack,
    embedded_valkey,
    emit,
    fmt,
    free_port,
    gunicorn_args,
    machine_line,
    markdown_table,
    percentile,
    temp_dir,
)
from bench.console_seed import REPS, seed  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import database as db  # noqa: E402
from bot.store.tables import Base  # noqa: E402
from console.accounts import add_user  # noqa: E402

PASSWORD = "bench password 123"
TARGET_MS = 100.0


def pages(lead_id: str) -> list[tuple[str, str]]:
    """(label, path) of every page measured."""
    return [
        ("live board", "/console/"),
        ("board rows (poll)", "/console/board/rows"),
        ("board rows, status filter", "/console/board/rows?status=qualified"),
        ("board rows, rep filter", f"/console/board/rows?rep=%2B{REPS[0][1][1:]}"),
        ("lead page", f"/console/leads/{lead_id}"),
        ("reports (7 days)", "/console/reports"),
        ("reports CSV (7 days)", "/console/reports/funnel_source.csv"),
        ("health", "/console/health"),
        ("roster", "/console/roster"),
        ("flows", "/console/flows"),
        ("users & audit", "/console/users"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30, help="spread the leads over this many days")
    parser.add_argument("--requests", type=int, default=60, help="requests per page")
    parser.add_argument("--database-url", help="default: a SQLite file in a temp dir")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with temp_dir("leadbot-console-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp / 'leadbot.db'}"
        engine = db.make_engine(url)
        db.init_db(engine)
        if args.database_url:
            Base.metadata.drop_all(engine)
            db.init_db(engine)
        t0 = time.perf_counter()
        newest = seed(engine, args.leads, args.days)
        print(f"seeded {args.leads:,} leads in {time.perf_counter() - t0:.1f} s", flush=True)
        engine.dispose()
        with embedded_valkey(tmp / "valkey") as redis_url:
            port = free_port()
            env = {
                "LEADBOT_DATA_DIR": str(tmp),
                "REDIS_URL": redis_url,
                "DATABASE_URL": url,
                "SECRET_KEY": "bench-secret",
                "LEAD_API_KEYS": "bench-key-0123456789",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            }
            add_user(Settings(**env), "bench@example.com", PASSWORD, "admin")
            with Stack("console", env, tmp, port) as stack:
                stack.spawn("web", gunicorn_args(port, "app:create_app()", args.web_workers))
                stack.wait_ready("/healthz")
                rows = measure(stack.url, pages(newest), args.requests)
                rows += measure(
                    stack.url,
                    [("reports (7 days), cold: every day re-read", "/console/reports")],
                    max(args.requests // 10, 3),
                    before=lambda: _flush_reports(redis_url),
                )
    worst = max(float(r[3]) for r in rows if "cold" not in r[0])
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    text = (
        f"Console pages, {args.leads:,} leads over {args.days} days on {db_kind}, {args.requests} sequential "
        f"requests per page, gunicorn {args.web_workers} sync workers; {machine_line()}\n\n"
        + markdown_table(["page", "p50 ms", "p90 ms", "p95 ms", "max ms"], rows)
        + f"\n\nWorst p95 (the cold report aside): {worst:.1f} ms (target < {TARGET_MS:.0f} ms): "
        f"{'met' if worst < TARGET_MS else 'NOT met'}."
    )
    return emit(text, args.out)


def _flush_reports(redis_url: str) -> None:
    """Forget every cached report figure, so the next report reads the events again."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    keys = list(conn.scan_iter("console:report*"))
    if keys:
        conn.delete(*keys)


def measure(base: str, targets: list[tuple[str, str]], n: int, before=None) -> list[list[str]]:  # noqa: ANN001
    """Log in, warm each page up, then time n requests of each (calling `before` ahead of each one)."""
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(base + "/console/login").text).group(1)
    resp = http.post(
        base + "/console/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status_code == 302, resp.text[:500]
    rows = []
    for label, path in targets:
        for _ in range(3):
            assert http.get(base + path).status_code == 200, path
        times = []
        for _ in range(n):
            if before is not None:
                before()
            t = time.perf_counter()
            r = http.get(base + path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code)
        rows.append(
            [
                label,
                fmt(percentile(times, 50)),
                fmt(percentile(times, 90)),
                fmt(percentile(times, 95)),
                fmt(max(times)),
            ]
        )
        print(f"{label}: p95 {percentile(times, 95):.1f} ms", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
