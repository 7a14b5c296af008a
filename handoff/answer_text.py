"""Flow answers as short text for whispers, texts and emails (from the engine's normalized values)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£", "MXN": "MX$"}
NOT_SURE = "not sure"


def money(value: Mapping[str, Any]) -> str:
    """{"min", "max", "currency"} as "$12,000", "$5,000-$8,000" or "$5,000+"."""
    sign = SYMBOLS.get(str(value.get("currency") or "USD"), "")
    suffix = "" if sign else f" {value.get('currency')}"

    def amount(x: Any) -> str:
        return f"{sign}{float(x):,.0f}{suffix}"

    low, high = value.get("min"), value.get("max")
    if high is None:
        return f"{amount(low)}+"
    return amount(low) if low == high else f"{amount(low)}-{amount(high)}"


def timeframe(value: Mapping[str, Any]) -> str:
    """A parsed timeframe as words: "right away", "within 14 days", "from Jul 1"."""
    kind, days = value.get("kind"), value.get("days_from_now", value.get("days"))
    start, end = _day(value.get("start")), _day(value.get("end"))
    when = f"{start:%b} {start.day}" if start else ""
    if kind == "asap" or days == 0:
        return "right away"
    if kind == "window" and end:
        return f"by {end:%b} {end.day}"
    if kind == "deferred":
        return f"later (after {when})" if when else "later"
    return f"from {when} (~{days} days)" if when else f"in ~{days} days"


def _day(value: Any) -> date | None:
    """An ISO date, or None."""
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def readable(value: Any) -> str:
    """One answer as text; choice ids and yes/no read as words."""
    if isinstance(value, Mapping):
        if {"min", "max"} <= value.keys():
            return money(value)
        if "kind" in value and "start" in value:
            return timeframe(value)
        return ", ".join(f"{k}: {readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if text == "unknown":
        return NOT_SURE
    return text.replace("_", " ") if text.isidentifier() else text


def readable_answers(*sources: Mapping[str, Any] | None) -> dict[str, str]:
    """Merge answer dicts (later wins) into ``{step: text}``, skipping empty answers."""
    merged: dict[str, Any] = {}
    for source in sources:
        merged.update(source or {})
    out = {str(k): readable(v) for k, v in merged.items()}
    return {k: v for k, v in out.items() if v}
