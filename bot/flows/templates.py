"""Sandboxed Jinja2 for prompts: compile once at load, check variables statically, render safely."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger(__name__)

LEAD_FIELDS = ("name", "first_name", "phone", "email", "service", "source", "language", "message")
# A failing prompt must not end a live call: these are what a well-formed template can still raise.
RENDER_ERRORS = (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError)
MARKUP = re.compile(r"\{[{%#]")


class _Undefined(jinja2.StrictUndefined):
    """StrictUndefined that names the variable the way staff wrote it (`lead.nmae`)."""

    @property
    def _undefined_message(self) -> str:
        owner = getattr(self._undefined_obj, "_label", None)
        if owner:
            return f"unknown variable '{owner}.{self._undefined_name}'"
        return super()._undefined_message


ENV = SandboxedEnvironment(
    undefined=_Undefined,
    autoescape=False,
    keep_trailing_newline=False,
    finalize=lambda value: "" if value is None else value,
)


class LeadView:
    """The `lead` template variable: fixed fields only, missing ones render empty."""

    _label = "lead"

    def __init__(self, lead: Mapping[str, Any]) -> None:
        for field in LEAD_FIELDS:
            setattr(self, field, lead.get(field) or "")


class AnswerView:
    """One earlier answer: prints as what the person said (or the choice label); `.value` is normalized."""

    def __init__(self, value: Any = None, raw: str = "", label: str = "") -> None:
        self.value = value
        self.raw = raw
        self.label = label

    def __str__(self) -> str:
        return self.label or self.raw


class AnswersView:
    """The `answers` template variable: known steps only; unanswered ones render empty."""

    _label = "answers"

    def __init__(self, step_ids: Iterable[str], answered: Mapping[str, AnswerView]) -> None:
        for step_id in step_ids:
            setattr(self, step_id, answered.get(step_id, AnswerView()))


@dataclass(frozen=True)
class Text:
    """A staff text in one or more languages, each compiled to a template."""

    variants: Mapping[str, jinja2.Template]
    sources: Mapping[str, str]

    def pick(self, language: str, fallback: str) -> str:
        """The variant to use: the lead's language, else the flow language, else the first one."""
        lang = language if language in self.variants else fallback
        return lang if lang in self.variants else next(iter(self.variants))

    @cached_property
    def _literals(self) -> dict[str, str]:
        # Variants with no template markup are the same for every lead: most prompts, on every turn.
        return {lang: " ".join(src.split()) for lang, src in self.sources.items() if not MARKUP.search(src)}

    def literal(self, language: str, fallback: str) -> str | None:
        """The finished text when the chosen variant has no template markup, else None."""
        return self._literals.get(self.pick(language, fallback))

    def render(self, language: str, fallback: str, context: Mapping[str, Any]) -> str:
        """Render the lead's language, else the flow language; a runtime failure yields the raw text."""
        lang = self.pick(language, fallback)
        try:
            text = self.variants[lang].render(context)
        except RENDER_ERRORS:
            log.exception("template failed at runtime; using raw text: %r", self.sources[lang])
            text = re.sub(r"\{[{%#].*?[}%#]\}", "", self.sources[lang])
        return " ".join(text.split())


def template_problems(
    source: str, step_ids: Iterable[str], extra: tuple[str, ...] = ()
) -> tuple[jinja2.Template | None, list[tuple[int, str]]]:
    """Compile `source`; return the template and (template line, message) for each problem.

    `extra` names plain variables some texts may use besides lead and answers (e.g. callback_number).
    """
    try:
        tree = ENV.parse(source)
        template = ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        return None, [(exc.lineno or 1, f"template error: {exc.message}")]
    known = {"lead": set(LEAD_FIELDS), "answers": set(step_ids), **{name: set() for name in extra}}
    problems: list[tuple[int, str]] = []
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in known and name.name not in local:
            problems.append((name.lineno, f"unknown variable '{name.name}'"))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        owner = node.node
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(owner, nodes.Name) and owner.name in known and isinstance(attr, str):
            if attr not in known[owner.name]:
                problems.append((node.lineno, f"unknown variable '{owner.name}.{attr}'"))
    if problems:
        return template, sorted(set(problems))
    try:
        template.render({**sample_context(step_ids), **{name: f"sample {name}" for name in extra}})
    except RENDER_ERRORS as exc:
        message = getattr(exc, "message", None) or str(exc)
        problems.append((getattr(exc, "lineno", None) or 1, f"template error: {message}"))
    return template, problems


def sample_context(step_ids: Iterable[str]) -> dict[str, Any]:
    """A plausible context for a trial render at load time."""
    ids = list(step_ids)
    lead = {field: f"sample {field}" for field in LEAD_FIELDS}
    answers = {sid: AnswerView("sample", "sample answer") for sid in ids}
    return {"lead": LeadView(lead), "answers": AnswersView(ids, answers)}


def context(
    lead: Mapping[str, Any], step_ids: Iterable[str], answered: Mapping[str, AnswerView]
) -> dict[str, Any]:
    """The runtime template context."""
    return {"lead": LeadView(lead), "answers": AnswersView(step_ids, answered)}
