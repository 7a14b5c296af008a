"""The roster form's document work: a rep's or manager's fields in and out of the roster YAML.

The file is edited in place with ruamel.yaml's round-trip mode, so comments, key order, quoting and
every entry the form did not touch stay as they were; only the saved entry's changed keys are
rewritten (changed working hours in the canonical folded form, e.g. ``mon-fri``). Nothing here
validates: the result is checked as text by the same validator as ``leadbot roster check``.
"""

from __future__ import annotations

import io
import re
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from handoff.shifts import DAYS, WorkingHours, parse_hours

REP_FIELDS = ("name", "phone", "email", "services", "territories", "languages", "team", "weight",
              "priority", "capacity", "active", "timezone", *DAYS)
MANAGER_FIELDS = ("name", "email", "phone")
LISTS = ("services", "territories", "languages")
NUMBERS = ("weight", "priority", "capacity")
_REQUIRED = re.compile(r"required key '([a-z_]+)'")
_PLAIN = re.compile(r"[A-Za-z][\w .@'/-]{0,200}")


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


class UnreadableRoster(ValueError):
    """The roster file is not YAML the form can edit (the YAML editor shows why)."""


def load(text: str) -> CommentedMap:
    """The roster document (an empty one for an empty file); UnreadableRoster when it is not a mapping."""
    try:
        doc = _yaml().load(text) if text.strip() else CommentedMap()
    except YAMLError as exc:
        raise UnreadableRoster(str(exc)) from exc
    if not isinstance(doc, CommentedMap):
        raise UnreadableRoster("the roster is not a mapping of managers and salespeople")
    return doc


def dump(doc: CommentedMap) -> str:
    """The document as text again."""
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def entries(doc: CommentedMap, section: str) -> list[Any]:
    """The list under ``salespeople`` or ``managers`` (empty when missing or not a list)."""
    value = doc.get(section)
    return list(value) if isinstance(value, list) else []


def _shown(value: Any) -> str:
    """A YAML value as the form shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _windows(day: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in day)


def rep_values(entry: Any) -> dict[str, Any]:
    """A rep's entry as form values (hours one weekday per field)."""
    entry = entry if isinstance(entry, dict) else {}
    values = {k: _shown(entry.get(k)) for k in REP_FIELDS if k not in ("active", "timezone", *DAYS)}
    values["active"] = entry.get("active", True) is not False
    hours = entry.get("hours")
    values["has_hours"] = hours is not None
    values.update({d: "" for d in DAYS}, timezone="", shifts=[])
    if isinstance(hours, dict):
        values["timezone"] = _shown(hours.get("timezone"))
        parsed, problems = parse_hours(hours)
        if parsed is not None:
            values.update({d: _windows(w) for d, w in zip(DAYS, parsed.week, strict=True)})
            values["shifts"] = [f"{k} {v}" for k, v in parsed.to_dict().items() if k != "timezone"]
        else:  # the file's hours are broken: show them by key so the admin can fix them
            values.update({str(k): _shown(v) for k, v in hours.items() if str(k) in DAYS})
    return values


def manager_values(entry: Any) -> dict[str, Any]:
    """A manager's entry as form values."""
    entry = entry if isinstance(entry, dict) else {}
    return {k: _shown(entry.get(k)) for k in MANAGER_FIELDS}


def _scalar(value: str) -> Any:
    """Text exactly as typed: quoted unless it is plain words that YAML reads back as that same text.

    The roster is read with YAML 1.1 rules, where ``no`` is false, ``+15125550142`` a number and
    ``08:00`` a count of minutes: such text is quoted.
    """
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return DoubleQuotedScalarString(value)


def _flow(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq([_scalar(i) for i in items])
    seq.fa.set_flow_style()
    return seq


def _number(value: str) -> Any:
    """A whole number as a number; anything else as text, for the validator to name."""
    return int(value) if re.fullmatch(r"-?\d{1,9}", value) else _scalar(value)


def _hours(form: dict[str, str], old: Any) -> Any:
    """The hours mapping from the form: the old node when unchanged, folded when valid, by day otherwise."""
    mapping = CommentedMap()
    if form.get("timezone", "").strip():
        mapping["timezone"] = _scalar(form["timezone"].strip())
    for day in DAYS:
        if form.get(day, "").strip():
            mapping[day] = _scalar(form[day].strip())
    parsed, problems = parse_hours(dict(mapping))
    if problems or parsed is None:
        return mapping  # by day, so each error names the day's field
    if isinstance(old, dict) and parse_hours(old)[0] == parsed:
        return old
    return CommentedMap((k, _scalar(v) if k == "timezone" else DoubleQuotedScalarString(v))
                        for k, v in WorkingHours.to_dict(parsed).items())


def _pop_trailing(node: Any) -> Any:
    """Take the comment (often the blank line between entries) after an entry's last value."""
    if not isinstance(node, CommentedMap) or not node:
        return None
    last = list(node)[-1]
    if isinstance(node[last], CommentedMap) and node[last]:
        return _pop_trailing(node[last])
    return node.ca.items.pop(last, None)


def _put_trailing(node: Any, token: Any) -> None:
    """Put that comment back after the entry's (possibly new) last value."""
    if token is None or not isinstance(node, CommentedMap) or not node:
        return
    last = list(node)[-1]
    if isinstance(node[last], CommentedMap) and node[last]:
        _put_trailing(node[last], token)
    else:
        node.ca.items[last] = token


def _apply(entry: CommentedMap, updates: dict[str, Any]) -> None:
    """Set or remove keys (None removes), keeping the entry's trailing comment at its end."""
    trailing = _pop_trailing(entry)
    for key, value in updates.items():
        if value is None:
            entry.pop(key, None)
        elif key not in entry or entry[key] != value or type(entry[key]) is not type(value):
            entry[key] = value
    _put_trailing(entry, trailing)


def rep_updates(form: dict[str, str], old: Any) -> dict[str, Any]:
    """What the form sets on a rep's entry (None: leave the key out)."""
    old = old if isinstance(old, dict) else {}
    out: dict[str, Any] = {}
    for key in ("name", "phone", "email", "team"):
        value = form.get(key, "").strip()
        out[key] = None if not value else (old[key] if _shown(old.get(key)) == value else _scalar(value))
    for key in LISTS:
        items = [i.strip() for i in form.get(key, "").split(",") if i.strip()]
        if key == "services" or items:
            same = _shown(old.get(key)) == ", ".join(items) and isinstance(old.get(key), list)
            out[key] = old[key] if same else _flow(items)
        else:
            out[key] = None
    for key in NUMBERS:
        value = form.get(key, "").strip()
        out[key] = _number(value) if value else None
    active = form.get("active") in ("1", "on", "true")
    out["active"] = False if not active else (True if "active" in old else None)
    out["hours"] = _hours(form, old.get("hours")) if form.get("has_hours") else None
    return out


def _slot(doc: CommentedMap, section: str, index: int | None) -> tuple[int, CommentedMap]:
    """Entry ``index`` of a section, or a new empty one at its end (index None)."""
    items = doc.get(section)
    if not isinstance(items, list):
        items = doc[section] = CommentedSeq()
    if index is None:
        items.append(CommentedMap())
        index = len(items) - 1
    if not isinstance(items[index], CommentedMap):  # a broken entry: the form's fields replace it
        items[index] = CommentedMap()
    return index, items[index]


def save_rep(doc: CommentedMap, index: int | None, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Write the form into rep ``index`` (None: a new rep at the end); returns its index and the changes."""
    index, entry = _slot(doc, "salespeople", index)
    before = rep_values(entry)
    _apply(entry, rep_updates(form, entry))
    return index, _changes(before, rep_values(entry))


def save_manager(doc: CommentedMap, index: int | None, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Write the form into manager ``index`` (None: a new manager); returns its index and the changes."""
    index, entry = _slot(doc, "managers", index)
    before = manager_values(entry)
    updates = {}
    for key in MANAGER_FIELDS:
        value = form.get(key, "").strip()
        same = _shown(entry.get(key)) == value
        updates[key] = None if not value else (entry[key] if same else _scalar(value))
    _apply(entry, updates)
    return index, _changes(before, manager_values(entry))


def set_active(doc: CommentedMap, index: int, active: bool) -> None:
    """Take a rep out of rotation (active: false) or put them back."""
    entry = doc["salespeople"][index]
    _apply(entry, {"active": False if not active else (True if "active" in entry else None)})


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Field: [before, after] for what changed (for the audit log)."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v and k != "shifts"}


def field_errors(errors: list[dict[str, Any]], section: str, index: int,
                 fields: tuple[str, ...]) -> tuple[dict[str, list[str]], list[str]]:
    """The validator's errors split into those of the entry's fields and the rest (shown at the top)."""
    me = f"{section}[{index}]"
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for e in errors:
        where, message = e.get("where") or "", e["message"]
        if where != me and not where.startswith((me + ".", me + "[")):
            if me not in message or not where.startswith(f"{section}["):  # "also used by salespeople[i]"
                general.append(f"{where}: {message}" if where else message)
                continue
            where = me + where[where.index("]") + 1:]
        parts = [p for p in re.split(r"[.\[\]]", where[len(me):]) if p]
        field = parts[0] if parts else ""
        if field == "hours":
            field = parts[1] if len(parts) > 1 else ""
            if not field:
                m = _REQUIRED.search(message)
                field = m.group(1) if m else "timezone"
        elif not field:
            m = _REQUIRED.search(message)
            field = m.group(1) if m else ""
        if field in fields:
            by_field.setdefault(field, []).append(message)
        else:
            general.append(f"{where}: {message}")
    return by_field, general
