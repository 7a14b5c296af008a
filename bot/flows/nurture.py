"""Nurture drip sequences (`ivr_flows/nurture/<id>.yaml`): load, validate, and decide a step's condition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.flows.errors import FlowError
from bot.flows.templates import Text
from bot.flows.touchspec import Errors, read
from bot.flows.yamlmarks import MarkedList, shown

NURTURE_DIR = "nurture"
STEP_KEYS = ("id", "after", "channel", "text", "subject", "when")
WHEN_OPS = ("is", "is_not", "in", "known")
CHANNELS = ("sms", "email")


@dataclass(frozen=True)
class When:
    """`{answer: <step>, is|is_not|in|known: ...}` over the lead's stored answers."""

    answer: str
    op: str
    arg: Any

    def holds(self, answers: Mapping[str, Any]) -> bool:
        """True when the lead's answers satisfy it (values compared as lowercase text)."""
        value = answers.get(self.answer)
        if self.op == "known":
            return (value not in (None, "", "unknown")) == bool(self.arg)
        if value is None:
            return False
        text = str(value).casefold()
        if self.op == "in":
            return text in {str(a).casefold() for a in self.arg}
        same = text == str(self.arg).casefold()
        return same if self.op == "is" else not same


@dataclass(frozen=True)
class NurtureStep:
    """One drip message, `after` entering the sequence."""

    id: str
    after: timedelta
    channel: str
    text: Text
    subject: Text | None = None
    when: When | None = None


@dataclass(frozen=True)
class Sequence:
    """A drip sequence; steps in the order they are due."""

    id: str
    steps: tuple[NurtureStep, ...]
    path: str = ""


def _when(e: Errors, node: Any, where: str, line: int) -> When | None:
    if not e.keys(node, where, line, ("answer", *WHEN_OPS), ("answer",)):
        return None
    ops = [k for k in node if k in WHEN_OPS]
    if len(ops) != 1:
        e(node.line, where, f"a condition needs exactly one of {', '.join(WHEN_OPS)} besides 'answer'")
        return None
    op, arg = ops[0], node[ops[0]]
    if op == "in" and not isinstance(arg, MarkedList):
        e(node.line_of(op), f"{where}.in", "expected a list of values")
        return None
    if op == "known" and not isinstance(arg, bool):
        e(node.line_of(op), f"{where}.known", "expected true or false")
        return None
    return When(str(node["answer"]), op, list(arg) if op == "in" else arg)


def _step(e: Errors, node: Any, where: str, line: int) -> NurtureStep | None:
    if not e.keys(node, where, line, STEP_KEYS, ("id", "after", "channel", "text")):
        return None
    after = e.duration(node["after"], f"{where}.after", node.line_of("after"))
    channel = node["channel"]
    if channel not in CHANNELS:
        e(node.line_of("channel"), f"{where}.channel", f"expected sms or email, got {shown(channel)}")
    text = e.text(node["text"], f"{where}.text", node.line_of("text"))
    subject = (
        e.text(node["subject"], f"{where}.subject", node.line_of("subject")) if "subject" in node else None
    )
    when = _when(e, node["when"], f"{where}.when", node.line_of("when")) if "when" in node else None
    if after is None or channel not in CHANNELS or text is None or ("when" in node and when is None):
        return None
    return NurtureStep(str(node["id"]), after, str(channel), text, subject, when)


def load_sequence(path: Path, step_ids: set[str] | None = None) -> tuple[Sequence | None, list[FlowError]]:
    """Read and validate one sequence; `step_ids` (when given) checks the answers conditions name."""
    data, found = read(path)
    if found:
        return None, found
    e = Errors(str(path))
    if not e.keys(data, "", 1, ("id", "title", "steps"), ("id", "steps")):
        return None, e.found
    if data["id"] != path.stem:
        e(data.line_of("id"), "id", f"the id must match the file name ({path.stem!r})")
    raw = data["steps"]
    if not isinstance(raw, MarkedList) or not raw:
        e(data.line_of("steps"), "steps", "expected a list of steps")
        return None, e.found
    steps = [_step(e, node, f"steps[{i}]", raw.line_of(i)) for i, node in enumerate(raw)]
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step is None:
            continue
        if step.id in seen:
            e(raw.line_of(i), f"steps[{i}].id", f"step id {step.id!r} is used twice")
        seen.add(step.id)
        if step.when and step_ids is not None and step.when.answer not in step_ids:
            e(
                raw[i].line_of("when"),
                f"steps[{i}].when.answer",
                f"no flow step {step.when.answer!r} names that answer",
            )
    if e.found or None in steps:
        return None, e.found
    ordered = tuple(sorted((s for s in steps if s), key=lambda s: s.after))
    return Sequence(str(data["id"]), ordered, str(path)), []


def sequence_path(flows_dir: Path, sequence_id: str) -> Path:
    """Where a sequence lives."""
    return flows_dir / NURTURE_DIR / f"{sequence_id}.yaml"
