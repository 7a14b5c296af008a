"""A safe YAML loader that remembers the line of every node, so errors can point at it."""

from __future__ import annotations

import re
import reprlib
from typing import Any

import yaml

# Errors that a hostile or broken file can make the parser raise; anything else is our bug.
PARSE_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError, UnicodeError)


class MarkedStr(str):
    """A string that knows its 1-based line and YAML scalar style ('|', '>', '"', "'" or '')."""

    line: int = 0
    style: str = ""


class MarkedDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []

    def line_of(self, key: Any) -> int:
        """Line of `key` when present, else the mapping's own line."""
        return self.key_lines.get(key, self.line)


class MarkedList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        """Line of item `index`, else the sequence's own line."""
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class MarkedLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (so `yes:`/`no:`/`on:` stay strings) and line marks."""


# YAML 1.1 turns yes/no/on/off into booleans; staff write `on: {yes: x, no: y}` and mean words.
MarkedLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MarkedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_str(loader: MarkedLoader, node: yaml.ScalarNode) -> MarkedStr:
    value = MarkedStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    value.style = node.style or ""
    return value


def _construct_map(loader: MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "found a list or mapping used as a key", key_node.start_mark
            )
        line = key_node.start_mark.line + 1
        if key in result:
            result.duplicates.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: MarkedLoader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


MarkedLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


class _ShortRepr(reprlib.Repr):
    """reprlib that treats our marked types like the builtins they extend (so it can cut them short)."""

    repr_MarkedStr = reprlib.Repr.repr_str  # noqa: N815 - reprlib dispatches on "repr_" + type name
    repr_MarkedList = reprlib.Repr.repr_list  # noqa: N815
    repr_MarkedDict = reprlib.Repr.repr_dict  # noqa: N815


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


def shown(value: Any) -> str:
    """A value for an error message, cut short (aliases can make YAML values enormous)."""
    return _SHORT.repr(value)


def parse_yaml(text: str) -> tuple[Any, int | None, str | None]:
    """Parse one YAML document: (data, None, None) or (None, line, message) when it is malformed."""
    try:
        return yaml.load(text, Loader=MarkedLoader), None, None  # noqa: S506 - MarkedLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "malformed YAML"
        return None, line, f"invalid YAML: {what}"
    except PARSE_ERRORS as exc:
        return None, None, f"invalid YAML: {exc}"
