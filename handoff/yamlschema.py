"""A YAML reader that remembers the line of every key, and small field checks that report against it."""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]
MISSING: Any = object()  # marks a required key in get()


class ItemErrors(ValueError):
    """Problems inside a list, each with the index of the offending item."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"item {i}: {m}" for i, m in problems))


class YamlSyntaxError(ValueError):
    """The text is not YAML; ``line`` is 1-based."""

    def __init__(self, filename: str, line: int, problem: str) -> None:
        self.filename, self.line, self.problem = filename, line, problem
        super().__init__(f"{filename}:{line}: YAML syntax error: {problem}")


MAX_ENTRIES = 100_000  # aliases can make a small file expand without bound ("billion laughs")
# What a hostile or broken file can make PyYAML raise besides its marked errors: a control character
# (ReaderError), a list as a key (TypeError), a date like 2024-02-30 (ValueError), deep nesting.
PARSE_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)


def compose(text: str, filename: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML into plain data plus the 1-based line of every key and list item."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        data = None if node is None else _walk(loader, node, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(filename, line, str(exc.problem or exc)) from exc
    except PARSE_ERRORS as exc:
        if isinstance(exc, YamlSyntaxError):
            raise YamlSyntaxError(filename, exc.line, exc.problem) from exc
        problem = f"{type(exc).__name__}: {exc}"[:300]
        raise YamlSyntaxError(filename, getattr(exc, "line", 1), problem) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """Build plain data from a node, recording where each child starts."""
    lines.setdefault(path, node.start_mark.line + 1)
    if len(lines) > MAX_ENTRIES:
        raise YamlSyntaxError("", node.start_mark.line + 1, f"more than {MAX_ENTRIES} entries (aliases?)")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _walk(loader, value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, child, path + (i,), lines) for i, child in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def dotted(path: Path_) -> str:
    """``('salespeople', 2, 'phone')`` as ``salespeople[2].phone``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Reporter:
    """Collects errors and formats them with the file and the nearest known line."""

    def __init__(self, filename: str, lines: dict[Path_, int]) -> None:
        self.filename = filename
        self.lines = lines
        self.errors: list[str] = []

    def line(self, path: Path_) -> int:
        """The line of ``path``, or of its closest ancestor that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def __call__(self, path: Path_, message: str) -> None:
        """Record one error."""
        self.errors.append(f"{self.filename}:{self.line(path)}: {dotted(path)}: {message}")


def mapping(item: Any, path: Path_, report: Reporter, allowed: tuple[str, ...]) -> bool:
    """Report a non-mapping or unknown keys (typos like ``territory``); True when usable."""
    if not isinstance(item, dict):
        report(path, f"expected a mapping with keys {', '.join(allowed)}, got {type(item).__name__}")
        return False
    for key in item:
        if key not in allowed:
            report(path + (key,), f"unknown key '{key}' (expected one of: {', '.join(allowed)})")
    return True


def items(data: dict[str, Any], key: str, report: Reporter, build: Any, required: bool = True) -> list[Any]:
    """Validate each element of a top-level list; one slot per element (None when invalid)."""
    value = data.get(key, MISSING)
    if value is MISSING or value is None:
        if required:
            report((), f"required key '{key}' not provided")
        return []
    if not isinstance(value, list) or (required and not value):
        report((key,), "expected a non-empty list" if required else "expected a list")
        return []
    return [build(item, (key, i)) for i, item in enumerate(value)]


def get(item: dict[str, Any], path: Path_, key: str, report: Reporter, convert: Any,
        default: Any = MISSING) -> Any:
    """Convert ``item[key]``; a missing required key or a ValueError becomes an error."""
    if key not in item or item[key] is None:
        if default is MISSING:
            report(path, f"required key '{key}' not provided")
            return None
        return default
    try:
        return convert(item[key])
    except ItemErrors as exc:
        for index, message in exc.problems:
            report(path + (key, index), message)
    except ValueError as exc:
        report(path + (key,), str(exc))
    return None


def text(value: object) -> str:
    """A non-empty string (numbers are accepted as text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
        raise ValueError(f"expected text, got {value!r}")
    return str(value).strip()


def list_of(convert: Any, required: bool = False) -> Any:
    """A converter for a list (a lone scalar counts as a one-item list)."""
    def run(value: object) -> tuple[Any, ...]:
        items = value if isinstance(value, list) else [value]
        if required and not items:
            raise ValueError("expected a non-empty list")
        out, problems = [], []
        for i, item in enumerate(items):
            try:
                out.append(convert(item))
            except ValueError as exc:
                problems.append((i, str(exc)))
        if problems:
            raise ItemErrors(problems)
        return tuple(out)
    return run


def whole(minimum: int | None) -> Any:
    """A converter for whole numbers at or above ``minimum``."""
    def run(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            bound = f" >= {minimum}" if minimum is not None else ""
            raise ValueError(f"expected a whole number{bound}, got {value!r}")
        return value
    return run


def positive_number(value: object) -> float:
    """A number above zero (minutes may be fractional)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a number above 0, got {value!r}")
    return value


def boolean(value: object) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value
