"""`leadbot flows check|try`: validate flow files, or chat through a flow as an SMS prospect would."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.flows import engine, sms_render
from bot.flows.errors import FlowError, FlowNotFound
from bot.flows.loader import load_flow
from bot.flows.model import Flow
from bot.flows.registry import FlowRegistry
from bot.flows.routing import NOT_FLOWS, ROUTING_FILE, load_routing
from bot.flows.touchcheck import is_touch_file, touch_file_problems, touch_files_in

DEFAULT_FLOWS_DIR = Path(__file__).resolve().parents[2] / "ivr_flows"


def flows_dir() -> Path:
    """FLOWS_DIR from the environment, else the repository's ivr_flows/."""
    return Path(os.environ.get("FLOWS_DIR") or DEFAULT_FLOWS_DIR)


def shown_path(path: Path) -> Path:
    """The path as staff typed it: relative to the current folder when it is inside it."""
    relative = os.path.relpath(path)
    return Path(relative) if not relative.startswith("..") else path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadbot flows", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate flows (default: every flow in FLOWS_DIR or ivr_flows/)")
    check.add_argument("files", nargs="*", type=Path)
    chat = sub.add_parser("try", help="chat through a flow in the terminal, as an SMS lead")
    chat.add_argument("flow", help="a flow id (in FLOWS_DIR) or a path to a flow file")
    chat.add_argument("--name", default="Alex Example")
    chat.add_argument("--service", default=None)
    chat.add_argument("--source", default="terminal")
    chat.add_argument("--language", default="en")
    chat.add_argument("--phone", default="+15005550006")
    return parser


def check(files: Sequence[Path], out: TextIO) -> int:
    """Print every error in `files` (or the flows folder); 0 when all are valid."""
    folder = flows_dir()
    found = [p for p in sorted(folder.glob("*.yaml")) if p.name not in NOT_FLOWS or p.name == ROUTING_FILE]
    touch_files = [shown_path(p) for p in files if is_touch_file(p)] if files else touch_files_in(folder)
    paths = [shown_path(p) for p in files or found if not is_touch_file(p)]
    if not paths and not touch_files:
        print(f"no flow files found in {folder}", file=out)
        return 1
    errors: list[FlowError] = []
    flows: dict[str, Path] = {}
    routing_paths = [p for p in paths if p.name == ROUTING_FILE]
    for path in paths:
        if path.name in NOT_FLOWS:
            continue
        flow, found = load_flow(path)
        errors += found
        if flow is not None and flow.id in flows:
            errors.append(
                FlowError(str(path), None, "id", f"flow id {flow.id!r} is already used by {flows[flow.id]}")
            )
        elif flow is not None:
            flows[flow.id] = path
    for path in routing_paths:
        routing, found = load_routing(path)
        known = {fid for fid, p in flows.items() if p.parent == path.parent} | _valid_ids(path.parent, paths)
        errors += found + (routing.problems(str(path), known) if routing.loaded else [])
    errors += touch_file_problems(touch_files, flows)
    for error in errors:
        print(error, file=out)
    if errors:
        files_with = len({e.path for e in errors})
        print(f"{len(errors)} error(s) in {files_with} file(s)", file=out)
        return 1
    routing_note = " and routing.yaml" if routing_paths else ""
    touch_note = f", {len(touch_files)} cadence/nurture file(s)" if touch_files else ""
    print(f"OK: {len(flows)} flow(s) valid ({', '.join(sorted(flows))}){routing_note}{touch_note}", file=out)
    return 0


def _valid_ids(folder: Path, skip: Sequence[Path]) -> set[str]:
    """Ids of valid flows in `folder` not already checked (routing may point at them)."""
    ids = set()
    for path in folder.glob("*.yaml"):
        if path.name not in NOT_FLOWS and path not in skip:
            flow, _ = load_flow(path)
            if flow is not None:
                ids.add(flow.id)
    return ids


def _resolve(name: str) -> Flow:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        flow, errors = load_flow(path)
        if flow is None:
            raise FlowNotFound("\n".join(str(e) for e in errors))
        return flow
    return FlowRegistry(flows_dir()).current(name)


def chat(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    """Run a flow over stdin/stdout; an empty line is silence. 0 when an outcome is reached."""
    try:
        flow = _resolve(args.flow)
    except FlowNotFound as exc:
        print(f"cannot use flow {args.flow!r}: {exc}", file=out)
        return 1
    lead = {
        "name": args.name,
        "service": args.service,
        "source": args.source,
        "language": args.language,
        "phone": args.phone,
    }
    state, prompts, outcome = engine.start(flow, lead, "sms")
    print(f"bot> {sms_render.render(prompts)}", file=out)
    for line in stdin:
        state, prompts, outcome = engine.step(flow, state, sms_render.event_from_sms(line))
        print(f"bot> {sms_render.render(prompts, outcome)}", file=out)
        if outcome is not None:
            print(f"outcome: {outcome.id} ({outcome.action}) - {outcome.reason}", file=out)
            print(f"answers: {outcome.answers}", file=out)
            return 0
    print("(input ended before the conversation finished)", file=out)
    return 1


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Entry point for `leadbot flows ...`; returns the exit code."""
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    if args.command == "check":
        return check(args.files, out)
    return chat(args, stdin or sys.stdin, out)


if __name__ == "__main__":
    raise SystemExit(main())
