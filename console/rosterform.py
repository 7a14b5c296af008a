"""The roster form's fields: a rep, manager or team in and out of the roster document, and the
validator's errors mapped back to the fields they are about.

Nothing here validates: the edited document is checked as text by the same validator as
``leadbot roster check``. Changed working hours are written in the canonical folded form
(``mon-fri: "08:00-18:00"``); renaming a team or a manager renames it where it is referred to.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from console.rosteryaml import apply, entries, flow, number, scalar, shown, slot, texts
from handoff.shifts import DAYS, WorkingHours, parse_hours

REP_FIELDS = ("name", "phone", "email", "services", "territories", "languages", "team", "weight",
              "priority", "capacity", "active", "timezone", *DAYS)
MANAGER_FIELDS = ("name", "email", "phone")
TEAM_FIELDS = ("name", "managers", "sla_minutes")
LISTS = ("services", "territories", "languages")
NUMBERS = ("weight", "priority", "capacity")
_REQUIRED = re.compile(r"required key '([a-z_]+)'")


def _windows(day: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in day)


def rep_values(entry: Any) -> dict[str, Any]:
    """A rep's entry as form values (hours one weekday per field)."""
    entry = entry if isinstance(entry, dict) else {}
    values: dict[str, Any] = {k: shown(entry.get(k)) for k in REP_FIELDS
                              if k not in ("active", "timezone", *DAYS)}
    values["active"] = entry.get("active", True) is not False
    hours = entry.get("hours")
    values["has_hours"] = hours is not None
    values.update({d: "" for d in DAYS}, timezone="", shifts=[])
    if isinstance(hours, dict):
        values["timezone"] = shown(hours.get("timezone"))
        parsed, _problems = parse_hours(hours)
        if parsed is not None:
            values.update({d: _windows(w) for d, w in zip(DAYS, parsed.week, strict=True)})
            values["shifts"] = [f"{k} {v}" for k, v in parsed.to_dict().items() if k != "timezone"]
        else:  # the file's hours are broken: show them by key so the admin can fix them
            values.update({str(k): shown(v) for k, v in hours.items() if str(k) in DAYS})
    return values


def manager_values(entry: Any) -> dict[str, Any]:
    """A manager's entry as form values."""
    entry = entry if isinstance(entry, dict) else {}
    return {k: shown(entry.get(k)) for k in MANAGER_FIELDS}


def team_values(entry: Any) -> dict[str, Any]:
    """A team's entry as form values (its managers as a list of names)."""
    entry = entry if isinstance(entry, dict) else {}
    managers = entry.get("managers")
    return {"name": shown(entry.get("name")), "sla_minutes": shown(entry.get("sla_minutes")),
            "managers": [str(m) for m in managers] if isinstance(managers, list) else
            ([str(managers)] if managers else [])}


def _hours(form: dict[str, Any], old: Any) -> Any:
    """The hours mapping from the form: the old node when unchanged, folded when valid, by day otherwise."""
    mapping = CommentedMap()
    if form.get("timezone", "").strip():
        mapping["timezone"] = scalar(form["timezone"].strip())
    for day in DAYS:
        if form.get(day, "").strip():
            mapping[day] = scalar(form[day].strip())
    parsed, problems = parse_hours(dict(mapping))
    if problems or parsed is None:
        return mapping  # by day, so each error names the day's field
    if isinstance(old, dict) and parse_hours(old)[0] == parsed:
        return old
    return CommentedMap((k, scalar(v) if k == "timezone" else DoubleQuotedScalarString(v))
                        for k, v in WorkingHours.to_dict(parsed).items())


def _list(entry: dict[str, Any], key: str, items: list[str], keep_empty: bool) -> Any:
    """A list field as an update: the file's own list when unchanged, None (removed) when empty."""
    if not items and not keep_empty:
        return None
    same = isinstance(entry.get(key), list) and [str(v) for v in entry[key]] == items
    return entry[key] if same else flow(items)


def rep_updates(form: dict[str, Any], old: Any) -> dict[str, Any]:
    """What the form sets on a rep's entry (None: leave the key out)."""
    old = old if isinstance(old, dict) else {}
    out = texts(old, form, ("name", "phone", "email", "team"))
    for key in LISTS:
        items = [i.strip() for i in form.get(key, "").split(",") if i.strip()]
        out[key] = _list(old, key, items, keep_empty=key == "services")  # required: the validator says so
    for key in NUMBERS:
        value = form.get(key, "").strip()
        out[key] = number(value) if value else None
    active = form.get("active") in ("1", "on", "true")
    out["active"] = False if not active else (True if "active" in old else None)
    out["hours"] = _hours(form, old.get("hours")) if form.get("has_hours") else None
    return out


def save_rep(doc: CommentedMap, index: int | None, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Write the form into rep ``index`` (None: a new rep at the end); returns its index and the changes."""
    index, entry = slot(doc, "salespeople", index)
    before = rep_values(entry)
    apply(entry, rep_updates(form, entry))
    return index, _changes(before, rep_values(entry))


def _rename(doc: CommentedMap, section: str, key: str, old: str, new: str) -> list[str]:
    """Follow a rename where entries refer to the old name (a rep's team, a team's managers)."""
    touched = []
    for item in entries(doc, section):
        if not isinstance(item, CommentedMap):
            continue
        value = item.get(key)
        if isinstance(value, list) and old in [str(v) for v in value]:
            apply(item, {key: flow([new if str(v) == old else str(v) for v in value])})
        elif value is not None and not isinstance(value, list) and str(value) == old:
            apply(item, {key: scalar(new)})
        else:
            continue
        touched.append(str(item.get("name")))
    return touched


def save_manager(doc: CommentedMap, index: int | None, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Write the form into manager ``index`` (None: a new manager); returns its index and the changes."""
    index, entry = slot(doc, "managers", index)
    before = manager_values(entry)
    apply(entry, texts(entry, form, MANAGER_FIELDS))
    changes = _changes(before, manager_values(entry))
    if "name" in changes and before["name"] and entry.get("name"):
        if teams := _rename(doc, "teams", "managers", before["name"], str(entry["name"])):
            changes["renamed in teams"] = teams
    return index, changes


def save_team(doc: CommentedMap, index: int | None, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Write the form into team ``index`` (None: a new team); ``form["managers"]`` is a list of names."""
    index, entry = slot(doc, "teams", index)
    before = team_values(entry)
    updates = texts(entry, form, ("name",))
    updates["managers"] = _list(entry, "managers", [str(m) for m in form.get("managers") or []], False)
    value = str(form.get("sla_minutes", "")).strip()
    updates["sla_minutes"] = number(value) if value else None
    apply(entry, updates)
    changes = _changes(before, team_values(entry))
    if "name" in changes and before["name"] and entry.get("name"):
        if reps := _rename(doc, "salespeople", "team", before["name"], str(entry["name"])):
            changes["renamed for reps"] = reps
    return index, changes


def set_active(doc: CommentedMap, index: int, active: bool) -> None:
    """Take a rep out of rotation (active: false) or put them back."""
    entry = doc["salespeople"][index]
    apply(entry, {"active": False if not active else (True if "active" in entry else None)})


def set_sla(doc: CommentedMap, value: str) -> tuple[str, str]:
    """The roster's SLA in minutes (blank: the default); returns (before, after) as shown."""
    before = shown(doc.get("sla_minutes"))
    if not value.strip():
        doc.pop("sla_minutes", None)
    elif "sla_minutes" in doc:
        doc["sla_minutes"] = number(value.strip())  # in place: its line and comments stay
    else:
        doc.insert(0, "sla_minutes", number(value.strip()))
    return before, shown(doc.get("sla_minutes"))


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
            field = m.group(1) if m else ("timezone" if parts else "")
        if field in fields:
            by_field.setdefault(field, []).append(message)
        else:
            general.append(f"{where}: {message}")
    return by_field, general
