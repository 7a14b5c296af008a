"""The roster file edited in place: ruamel.yaml's round-trip mode, so comments, key order, quoting and
every entry the form did not touch stay as they were. Only what a save changes is rewritten.
"""

from __future__ import annotations

import io
import re
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

_PLAIN = re.compile(r"[A-Za-z][\w .@'/-]{0,200}")


class UnreadableRoster(ValueError):
    """The roster file is not YAML the form can edit (the YAML editor shows why)."""


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


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
    """The list under ``salespeople``, ``managers`` or ``teams`` (empty when missing or not a list)."""
    value = doc.get(section)
    return list(value) if isinstance(value, list) else []


def slot(doc: CommentedMap, section: str, index: int | None) -> tuple[int, CommentedMap]:
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


def shown(value: Any) -> str:
    """A YAML value as a form field shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def scalar(value: str) -> Any:
    """Text exactly as typed: quoted unless it is plain words that YAML reads back as that same text.

    The roster is read with YAML 1.1 rules, where ``no`` is false, ``+15125550142`` a number and
    ``08:00`` a count of minutes: such text is quoted.
    """
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return DoubleQuotedScalarString(value)


def flow(items: list[str]) -> CommentedSeq:
    """A list written on one line, ``[roofing, gutters]``, as the sample roster does."""
    seq = CommentedSeq([scalar(i) for i in items])
    seq.fa.set_flow_style()
    return seq


def number(value: str) -> Any:
    """A number as a number; anything else as text, for the validator to name."""
    if re.fullmatch(r"-?\d{1,9}", value):
        return int(value)
    if re.fullmatch(r"-?\d{1,9}\.\d{1,6}", value):
        return float(value)
    return scalar(value)


def texts(entry: dict[str, Any], form: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Text fields as updates: blank removes the key, unchanged keeps the file's own spelling and quotes."""
    out: dict[str, Any] = {}
    for key in keys:
        value = str(form.get(key, "")).strip()
        out[key] = None if not value else (entry[key] if shown(entry.get(key)) == value else scalar(value))
    return out


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


def apply(entry: CommentedMap, updates: dict[str, Any]) -> None:
    """Set or remove keys (None removes), keeping the entry's trailing comment at its end."""
    trailing = _pop_trailing(entry)
    for key, value in updates.items():
        if value is None:
            entry.pop(key, None)
        elif key not in entry or entry[key] != value or type(entry[key]) is not type(value):
            entry[key] = value
    _put_trailing(entry, trailing)
