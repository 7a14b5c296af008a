"""Shared pieces of the cadence and nurture files: durations, texts and file:line errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.flows.errors import FlowError
from bot.flows.templates import ENV, Text, template_problems
from bot.flows.yamlmarks import MarkedDict, parse_yaml, shown

DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Errors:
    """Collects every problem of one file as FlowError (printed `path:line: where: message`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: list[FlowError] = []

    def __call__(self, line: int | None, where: str, message: str) -> None:
        self.found.append(FlowError(self.path, line, where, message))

    def keys(
        self, node: Any, where: str, line: int, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> bool:
        """Check a mapping's keys; False when it is not a mapping or misses a required key."""
        if not isinstance(node, MarkedDict):
            self(line, where, f"expected a mapping, got {shown(node)}")
            return False
        for key in node:
            if key not in allowed:
                self(
                    node.line_of(key),
                    f"{where}.{key}".strip("."),
                    f"unknown key (allowed: {', '.join(allowed)})",
                )
        missing = [k for k in required if k not in node]
        for key in missing:
            self(node.line, where, f"missing required key {key!r}")
        return not missing

    def duration(self, value: Any, where: str, line: int) -> timedelta | None:
        """'30s', '2m', '2h', '3d'."""
        match = DURATION.match(str(value)) if isinstance(value, str | int) else None
        if match is None:
            self(
                getattr(value, "line", 0) or line,
                where,
                f"expected a delay like 30s, 2m, 2h or 3d, got {shown(value)}",
            )
            return None
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})

    def text(self, value: Any, where: str, line: int, extra: tuple[str, ...] = ()) -> Text | None:
        """A sandboxed Jinja template over `lead.*` (and `extra` names), checked now."""
        if not isinstance(value, str) or not value.strip():
            self(line, where, f"expected text, got {shown(value)}")
            return None
        template, problems = template_problems(_masked(value, extra), [])
        base = getattr(value, "line", 0) or line
        offset = 0 if getattr(value, "style", "") in ("|", ">") else -1
        for tline, message in problems:
            self(base + tline + offset, where, message)
        if template is None or problems:
            return None
        return Text({"en": ENV.from_string(value)}, {"en": value})


def _masked(source: str, extra: tuple[str, ...]) -> str:
    """The template with each allowed extra variable replaced by a known one, for the static check."""
    for name in extra:
        source = re.sub(rf"\b{re.escape(name)}\b", "lead.name", source)
    return source


def read(path: Path) -> tuple[Any, list[FlowError]]:
    """Parse a YAML file: (data, []) or (None, [the error])."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(str(path), None, "", f"cannot read file: {exc}")]
    data, line, message = parse_yaml(text)
    if message:
        return None, [FlowError(str(path), line, "", message)]
    return data, []
