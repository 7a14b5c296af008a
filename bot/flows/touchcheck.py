"""`leadbot flows check` for the cadence file and the nurture sequences beside the flows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.flows.cadence import CADENCE_FILE, load_cadences
from bot.flows.errors import FlowError
from bot.flows.loader import load_flow
from bot.flows.nurture import NURTURE_DIR, load_sequence


def is_touch_file(path: Path) -> bool:
    """True for the cadence file or a nurture sequence (not flows)."""
    return path.name == CADENCE_FILE or path.parent.name == NURTURE_DIR


def touch_files_in(folder: Path) -> list[Path]:
    """The cadence file and every nurture sequence in a flows folder."""
    found = [folder / CADENCE_FILE] if (folder / CADENCE_FILE).exists() else []
    return found + sorted((folder / NURTURE_DIR).glob("*.yaml"))


def touch_file_problems(paths: Sequence[Path], flows: Mapping[str, Path]) -> list[FlowError]:
    """Every error in these files, plus nurture sequences the checked flows name but nobody wrote."""
    errors: list[FlowError] = []
    named: dict[str, list[str]] = {}
    step_ids: set[str] = set()
    for flow_id, path in flows.items():
        flow, _ = load_flow(path)
        if flow is None:
            continue
        step_ids |= set(flow.steps)
        for outcome in flow.outcomes.values():
            kind, _, sequence = outcome.action.partition(":")
            if kind == "nurture":
                named.setdefault(sequence, []).append(flow_id)
    for path in paths:
        if path.name == CADENCE_FILE:
            errors += load_cadences(path, set(flows) or None)[1]
        else:
            errors += load_sequence(path, step_ids or None)[1]
    for sequence, users in sorted(named.items()):
        folder = flows[users[0]].parent / NURTURE_DIR
        if folder.is_dir() and not (folder / f"{sequence}.yaml").exists():
            errors.append(
                FlowError(
                    str(flows[users[0]]),
                    None,
                    "outcomes",
                    f"nurture sequence {sequence!r} has no file {folder / (sequence + '.yaml')}",
                )
            )
    return errors
