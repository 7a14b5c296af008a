"""What the editors check a draft with: the validator `leadbot flows check` uses for that kind of file.

Flows, the calling rules and the roster validate text; the cadence file and nurture sequences are
validated by path, so their draft is checked as a temporary file of the same name.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from bot.compliance.rules import RULES_FILE, load_rules_text
from bot.flows.cadence import CADENCE_FILE, load_cadences
from bot.flows.errors import FlowError
from bot.flows.loader import load_flow_text
from bot.flows.nurture import NURTURE_DIR, load_sequence
from bot.flows.routing import NOT_FLOWS, ROUTING_FILE
from handoff.roster_cache import check_roster_text

# Editable names: a flow's stem, "calling_rules", "cadence", or "nurture/<sequence>".
NAME = re.compile(rf"^(?:{NURTURE_DIR}/)?[A-Za-z0-9_-]{{1,80}}$")
_LINE = re.compile(r"^[^:]*:(\d+): (?:(.*?): )?(.*)$", re.S)


def editable_path(flows_dir: Path, name: str) -> Path | None:
    """The file a name stands for, or None when it is not an editable file (no path tricks)."""
    if not NAME.match(name) or f"{name}.yaml" == ROUTING_FILE:
        return None
    path = flows_dir / f"{name}.yaml"
    return path if path.is_file() else None


def kind_of(name: str) -> str:
    """flow | rules | cadence | nurture."""
    if name.startswith(f"{NURTURE_DIR}/"):
        return "nurture"
    return {RULES_FILE: "rules", CADENCE_FILE: "cadence"}.get(f"{name}.yaml", "flow")


def listing(flows_dir: Path) -> list[dict[str, str]]:
    """Every editable file of the flows folder, flows first."""
    flows = [
        {"name": p.stem, "kind": "flow"} for p in sorted(flows_dir.glob("*.yaml")) if p.name not in NOT_FLOWS
    ]
    others = [
        {"name": Path(f).stem, "kind": kind_of(Path(f).stem)}
        for f in (RULES_FILE, CADENCE_FILE)
        if (flows_dir / f).is_file()
    ]
    nurture = [
        {"name": f"{NURTURE_DIR}/{p.stem}", "kind": "nurture"}
        for p in sorted((flows_dir / NURTURE_DIR).glob("*.yaml"))
    ]
    return flows + others + nurture


def _as_dicts(errors: list[FlowError]) -> list[dict[str, Any]]:
    return [{"line": e.line, "where": e.where, "message": e.message} for e in errors]


def check_text(name: str, text: str) -> list[dict[str, Any]]:
    """Every error in a draft of an editable file, as {line, where, message}."""
    kind = kind_of(name)
    if kind == "flow":
        return _as_dicts(load_flow_text(text, f"{name}.yaml")[1])
    if kind == "rules":
        return _as_dicts(load_rules_text(text, RULES_FILE)[1])
    with tempfile.TemporaryDirectory(prefix="leadbot-draft-") as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        errors = load_cadences(path)[1] if kind == "cadence" else load_sequence(path)[1]
    return _as_dicts(errors)


def check_roster(text: str, region: str) -> list[dict[str, Any]]:
    """Every error in roster text, as {line, where, message}."""
    out = []
    for e in check_roster_text(text, "roster.yaml", region)[1]:
        m = _LINE.match(e)
        out.append(
            {"line": int(m.group(1)), "where": m.group(2) or "", "message": m.group(3)}
            if m
            else {"line": None, "where": "", "message": e}
        )
    return out
