"""The error-collecting builder that the flow schema modules share: keys, texts, targets, lists."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any, TypeGuard

from bot.flows.errors import FlowError
from bot.flows.model import DECIDE, DEFAULT_LANGUAGE, OUTCOME_PREFIX
from bot.flows.templates import Text, template_problems
from bot.flows.yamlmarks import MarkedDict, MarkedList, MarkedStr, shown

ID = re.compile(r"^[a-z][a-z0-9_]*$")


class Builder:
    """Builds one Flow; `errors` holds every problem found, in file order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[FlowError] = []
        self.language = DEFAULT_LANGUAGE
        self.languages: tuple[str, ...] = (DEFAULT_LANGUAGE,)
        self.step_ids: list[str] = []
        self.outcome_ids: list[str] = []

    def error(self, line: int | None, where: str, message: str) -> None:
        """Record one problem."""
        self.errors.append(FlowError(self.path, line, where, message))

    def keys(
        self, node: Any, where: str, line: int, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> TypeGuard[MarkedDict]:
        """Check a mapping's keys; False when `node` is not a mapping at all."""
        if not isinstance(node, MarkedDict):
            self.error(line, where, f"expected a mapping, got {kind_of(node)}")
            return False
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                self.error(node.line_of(key), join(where, key), f"unknown key {key!r}{hint}")
        for key in required:
            if key not in node:
                self.error(node.line or line, where, f"missing required key {key!r}")
        return True

    def string(self, node: MarkedDict, key: str, where: str, default: str | None = None) -> str | None:
        """A string value, or `default` with an error when it is the wrong type."""
        value = node.get(key, default)
        if value is not None and not isinstance(value, str):
            self.error(node.line_of(key), join(where, key), f"expected text, got {kind_of(value)}")
            return default
        return value

    def text(self, node: Any, where: str, line: int, step_ids: list[str], extra: tuple[str, ...] = ()) -> Text | None:
        """A template in one or more languages, each compiled and checked."""
        if isinstance(node, str):
            sources = {self.language: node}
            lines = {self.language: node}
        elif isinstance(node, MarkedDict) and node:
            sources, lines = {}, {}
            for lang, value in node.items():
                if lang not in self.languages:
                    self.error(
                        node.line_of(lang),
                        join(where, lang),
                        f"language {lang!r} is not declared (flow languages: {', '.join(self.languages)})",
                    )
                elif not isinstance(value, str):
                    self.error(node.line_of(lang), join(where, lang), f"expected text, got {kind_of(value)}")
                else:
                    sources[lang], lines[lang] = value, value
            for lang in self.languages:
                if lang not in node:
                    self.error(node.line, where, f"missing the {lang!r} text")
        else:
            self.error(line, where, f"expected text or a mapping of language to text, got {kind_of(node)}")
            return None
        variants = {}
        for lang, source in sources.items():
            base = getattr(lines[lang], "line", 0) or line
            offset = 0 if getattr(lines[lang], "style", "") in ("|", ">") else -1
            template, problems = template_problems(source, step_ids, extra)
            for tline, message in problems:
                where_lang = join(where, lang) if isinstance(node, MarkedDict) else where
                self.error(base + tline + offset, where_lang, message)
            if template is not None:
                variants[lang] = template
        return Text(variants, sources) if variants and len(variants) == len(sources) else None

    def target(self, value: Any, where: str, line: int) -> str | None:
        """A step id, `decide` or `outcome:<id>`; reports unknown ones."""
        line = getattr(value, "line", 0) or line
        if not isinstance(value, str):
            self.error(line, where, f"expected a step id, 'decide' or 'outcome:<id>', got {kind_of(value)}")
            return None
        if value == DECIDE or value in self.step_ids:
            return str(value)
        if value.startswith(OUTCOME_PREFIX):
            outcome = value[len(OUTCOME_PREFIX) :].strip()
            if outcome in self.outcome_ids:
                return OUTCOME_PREFIX + outcome
            self.error(line, where, f"unknown outcome {outcome!r}")
            return None
        self.error(line, where, f"unknown step {shown(value)}")
        return None


def join(where: str, key: Any) -> str:
    """`where` plus one more dotted key."""
    return f"{where}.{key}" if where else str(key)


def kind_of(value: Any) -> str:
    """How a YAML value reads to staff ("a list", "text", ...)."""
    if value is None:
        return "nothing"
    names = {MarkedDict: "a mapping", MarkedList: "a list", MarkedStr: "text", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


def keypad_digit(b: Builder, node: MarkedDict, key: str, where: str) -> str | None:
    """A single keypad key (0-9, * or #) from `node[key]`, or None."""
    value = node.get(key)
    if value is None or value is False:
        return None
    text = str(value) if isinstance(value, int | str) else ""
    if isinstance(value, bool) or not (len(text) == 1 and (text.isdigit() or text in "*#")):
        b.error(
            node.line_of(key), join(where, key), f"expected one keypad key (0-9, * or #), got {shown(value)}"
        )
        return None
    return text


def string_list(b: Builder, node: Any, where: str, line: int) -> tuple[str, ...]:
    """A list of words or phrases (or language -> list), flattened."""
    if isinstance(node, MarkedDict):  # per-language lists: every language's words are understood
        return tuple(
            w for lang, v in node.items() for w in string_list(b, v, join(where, lang), node.line_of(lang))
        )
    if not isinstance(node, MarkedList) or not all(isinstance(w, str) and w.strip() for w in node):
        b.error(line, where, "expected a list of words or phrases")
        return ()
    return tuple(str(w) for w in node)


def report_duplicates(b: Builder, node: Any, where: str, seen: set[int] | None = None) -> None:
    """YAML keeps the last of two equal keys silently; staff almost always meant two different ones."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return  # a YAML alias (*name) repeats a node: walking it again could take exponential time
    seen.add(id(node))
    if isinstance(node, MarkedDict):
        for key, line in node.duplicates:
            b.error(line, where or "(top level)", f"duplicate key {key!r}")
        for key, value in node.items():
            report_duplicates(b, value, join(where, key), seen)
    elif isinstance(node, MarkedList):
        for i, value in enumerate(node):
            report_duplicates(b, value, f"{where}[{i}]", seen)
