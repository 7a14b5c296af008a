"""Turn marked YAML into a Flow, collecting every schema, template and reference error on the way."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from bot.flows.conditions import parse_condition
from bot.flows.errors import FlowError
from bot.flows.model import (
    DECIDE,
    DEFAULT_LANGUAGE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_OPT_OUT_DIGIT,
    DEFAULT_VOICE,
    OPT_OUT_ID,
    OUTCOME_PREFIX,
    SUPPORTED_LANGUAGES,
    UNKNOWN,
    ActionKind,
    AnswerType,
    Choice,
    Flow,
    OptOut,
    OutcomeDef,
    Step,
)
from bot.flows.templates import Text, template_problems
from bot.flows.yamlmarks import MarkedDict, MarkedList, MarkedStr

ID = re.compile(r"^[a-z][a-z0-9_]*$")
TOP_KEYS = ("id", "title", "description", "language", "languages", "voice", "greeting", "steps", "outcomes",
            "opt_out")
STEP_KEYS = ("prompt", "type", "on", "reprompt", "max_retries", "on_fail", "choices", "synonyms", "hints")
CHOICE_KEYS = ("id", "label", "synonyms", "digit")
OUTCOME_KEYS = ("when", "say", "action")
OPT_OUT_KEYS = ("digit", "say", "words")
ANSWER_TYPES = ", ".join(t.value for t in AnswerType)
ACTIONS = "warm_transfer, handoff_sms, nurture:<sequence>, close, opt_out"
DEFAULT_OPT_OUT_SAY = {
    "en": "Understood. We won't contact you again. Goodbye.",
    "es": "Entendido. No le volveremos a contactar. Adiós.",
}


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

    def keys(self, node: Any, where: str, line: int, allowed: Iterable[str], required: Iterable[str] = ()) -> bool:
        """Check a mapping's keys; False when `node` is not a mapping at all."""
        if not isinstance(node, MarkedDict):
            self.error(line, where, f"expected a mapping, got {_kind(node)}")
            return False
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                self.error(node.line_of(key), _join(where, key), f"unknown key {key!r}{hint}")
        for key in required:
            if key not in node:
                self.error(node.line or line, where, f"missing required key {key!r}")
        return True

    def string(self, node: MarkedDict, key: str, where: str, default: str | None = None) -> str | None:
        """A string value, or `default` with an error when it is the wrong type."""
        value = node.get(key, default)
        if value is not None and not isinstance(value, str):
            self.error(node.line_of(key), _join(where, key), f"expected text, got {_kind(value)}")
            return default
        return value

    def text(self, node: Any, where: str, line: int, step_ids: list[str]) -> Text | None:
        """A template in one or more languages, each compiled and checked."""
        if isinstance(node, str):
            sources = {self.language: node}
            lines = {self.language: node}
        elif isinstance(node, MarkedDict) and node:
            sources, lines = {}, {}
            for lang, value in node.items():
                if lang not in self.languages:
                    self.error(node.line_of(lang), _join(where, lang),
                               f"language {lang!r} is not declared (flow languages: {', '.join(self.languages)})")
                elif not isinstance(value, str):
                    self.error(node.line_of(lang), _join(where, lang), f"expected text, got {_kind(value)}")
                else:
                    sources[lang], lines[lang] = value, value
            for lang in self.languages:
                if lang not in node:
                    self.error(node.line, where, f"missing the {lang!r} text")
        else:
            self.error(line, where, f"expected text or a mapping of language to text, got {_kind(node)}")
            return None
        variants = {}
        for lang, source in sources.items():
            base = getattr(lines[lang], "line", 0) or line
            offset = 0 if getattr(lines[lang], "style", "") in ("|", ">") else -1
            template, problems = template_problems(source, step_ids)
            for tline, message in problems:
                where_lang = _join(where, lang) if isinstance(node, MarkedDict) else where
                self.error(base + tline + offset, where_lang, message)
            if template is not None:
                variants[lang] = template
        return Text(variants, sources) if variants and len(variants) == len(sources) else None

    def target(self, value: Any, where: str, line: int) -> str | None:
        """A step id, `decide` or `outcome:<id>`; reports unknown ones."""
        line = getattr(value, "line", 0) or line
        if not isinstance(value, str):
            self.error(line, where, f"expected a step id, 'decide' or 'outcome:<id>', got {_kind(value)}")
            return None
        if value == DECIDE or value in self.step_ids:
            return str(value)
        if value.startswith(OUTCOME_PREFIX):
            outcome = value[len(OUTCOME_PREFIX) :].strip()
            if outcome in self.outcome_ids:
                return OUTCOME_PREFIX + outcome
            self.error(line, where, f"unknown outcome {outcome!r}")
            return None
        self.error(line, where, f"unknown step {value!r}")
        return None


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {MarkedDict: "a mapping", MarkedList: "a list", MarkedStr: "text", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


def _digit(b: Builder, node: MarkedDict, key: str, where: str) -> str | None:
    value = node.get(key)
    if value is None or value is False:
        return None
    text = str(value)
    if isinstance(value, bool) or not (len(text) == 1 and (text.isdigit() or text in "*#")):
        b.error(node.line_of(key), _join(where, key), f"expected one keypad key (0-9, * or #), got {value!r}")
        return None
    return text


def _strings(b: Builder, node: Any, where: str, line: int) -> tuple[str, ...]:
    if isinstance(node, MarkedDict):  # per-language lists: every language's words are understood
        return tuple(w for lang, v in node.items() for w in _strings(b, v, _join(where, lang), node.line_of(lang)))
    if not isinstance(node, MarkedList) or not all(isinstance(w, str) and w.strip() for w in node):
        b.error(line, where, "expected a list of words or phrases")
        return ()
    return tuple(str(w) for w in node)


def _choices(b: Builder, node: Any, where: str, line: int, opt_digit: str | None) -> tuple[Choice, ...]:
    if not isinstance(node, MarkedList) or len(node) < 2:
        b.error(line, where, "a choice step needs a list of at least two options")
        return ()
    result: list[Choice] = []
    digits: dict[str, str] = {}
    for i, item in enumerate(node):
        here = f"{where}[{i}]"
        if not b.keys(item, here, node.line_of(i), CHOICE_KEYS, ("id",)):
            continue
        cid = b.string(item, "id", here)
        if cid is None:
            continue
        if not ID.match(cid) or cid == UNKNOWN:
            why = "is reserved" if cid == UNKNOWN else "must be lowercase letters, digits and _"
            b.error(item.line_of("id"), f"{here}.id", f"choice id {cid!r} {why}")
        if any(c.id == cid for c in result):
            b.error(item.line_of("id"), f"{here}.id", f"choice id {cid!r} used twice")
        digit = _digit(b, item, "digit", here)
        if digit and digit in digits:
            b.error(item.line_of("digit"), f"{here}.digit", f"keypad digit {digit} used twice (also by '{digits[digit]}')")
        elif digit and digit == opt_digit:
            b.error(item.line_of("digit"), f"{here}.digit", f"keypad digit {digit} is the opt-out digit")
        elif digit:
            digits[digit] = cid
        label = b.text(item["label"], f"{here}.label", item.line_of("label"), b.step_ids) if "label" in item else None
        labels = tuple(label.sources.values()) if label else ()
        synonyms = _strings(b, item["synonyms"], f"{here}.synonyms", item.line_of("synonyms")) if "synonyms" in item else ()
        result.append(Choice(cid, label, labels, synonyms, digit))
    return result and tuple(result) or ()


def _on(b: Builder, step: MarkedDict, where: str, kind: AnswerType | None, choices: tuple[Choice, ...]) -> dict[str, str]:
    node = step.get("on")
    if kind == AnswerType.YES_NO:
        answer_keys = ["yes", "no"]
    elif kind == AnswerType.CHOICE:
        answer_keys = [c.id for c in choices]
    else:
        answer_keys = []
    allowed = [*answer_keys, UNKNOWN, "default", "next"]
    if not b.keys(node, f"{where}.on", step.line_of("on"), allowed):
        return {}
    if "default" in node and "next" in node:
        b.error(node.line_of("next"), f"{where}.on.next", "'next' and 'default' mean the same; keep one")
    on: dict[str, str] = {}
    for key, value in node.items():
        if key in allowed:
            target = b.target(value, f"{where}.on.{key}", node.line_of(key))
            if target:
                on["default" if key == "next" else str(key)] = target
    if not ("default" in node or "next" in node):
        missing = [k for k in answer_keys if k not in node] if answer_keys else ["any answer"]
        for key in missing:
            hint = f"add '{key}:' or 'default:'" if answer_keys else "add 'next:'"
            b.error(step.line_of("on"), f"{where}.on", f"no target for {key if not answer_keys else repr(key)}; {hint}")
    return on


def _step(b: Builder, sid: str, node: Any, line: int, opt_digit: str | None) -> Step | None:
    where = f"steps.{sid}"
    if not ID.match(sid) or sid == DECIDE:
        b.error(line, where, f"step id {sid!r} must be lowercase letters, digits and _ (and not 'decide')")
    if not b.keys(node, where, line, STEP_KEYS, ("prompt", "type", "on")):
        return None
    kind = None
    raw_type = node.get("type")
    if raw_type is not None:
        try:
            kind = AnswerType(raw_type)
        except ValueError:
            b.error(node.line_of("type"), f"{where}.type", f"unknown answer type {raw_type!r} (one of: {ANSWER_TYPES})")
    choices: tuple[Choice, ...] = ()
    if kind == AnswerType.CHOICE:
        choices = _choices(b, node.get("choices"), f"{where}.choices", node.line_of("choices"), opt_digit)
    elif "choices" in node:
        b.error(node.line_of("choices"), f"{where}.choices", "only choice steps have choices")
    if "synonyms" in node:
        if kind == AnswerType.YES_NO and b.keys(node["synonyms"], f"{where}.synonyms", node.line_of("synonyms"), ("yes", "no")):
            syn = node["synonyms"]
            choices = tuple(Choice(k, None, (), _strings(b, syn[k], f"{where}.synonyms.{k}", syn.line_of(k)), None)
                            for k in ("yes", "no") if k in syn)
        elif kind != AnswerType.YES_NO:
            b.error(node.line_of("synonyms"), f"{where}.synonyms", "only yes_no steps take synonyms (choices have their own)")
    on = _on(b, node, where, kind, choices) if "on" in node else {}
    prompt = b.text(node["prompt"], f"{where}.prompt", node.line_of("prompt"), b.step_ids) if "prompt" in node else None
    reprompt = b.text(node["reprompt"], f"{where}.reprompt", node.line_of("reprompt"), b.step_ids) if "reprompt" in node else None
    retries = node.get("max_retries", DEFAULT_MAX_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        b.error(node.line_of("max_retries"), f"{where}.max_retries", f"expected a whole number from 0 to 5, got {retries!r}")
        retries = DEFAULT_MAX_RETRIES
    on_fail = b.target(node["on_fail"], f"{where}.on_fail", node.line_of("on_fail")) if "on_fail" in node else DECIDE
    hints = _strings(b, node["hints"], f"{where}.hints", node.line_of("hints")) if "hints" in node else ()
    if kind is None or prompt is None:
        return None
    return Step(sid, prompt, kind, on, reprompt, retries, on_fail or DECIDE, choices, hints, line)


def _outcome(b: Builder, oid: str, node: Any, line: int, steps: dict[str, Step]) -> OutcomeDef | None:
    where = f"outcomes.{oid}"
    if not ID.match(oid) or oid == OPT_OUT_ID:
        why = "is reserved (set the goodbye under opt_out.say)" if oid == OPT_OUT_ID else "must be lowercase letters, digits and _"
        b.error(line, where, f"outcome id {oid!r} {why}")
    if not b.keys(node, where, line, OUTCOME_KEYS, ("say", "action")):
        return None
    action = b.string(node, "action", where)
    if action is not None:
        kind, _, sequence = action.partition(":")
        valid = kind in {a.value for a in ActionKind} and (bool(sequence.strip()) == (kind == ActionKind.NURTURE))
        if not valid:
            b.error(node.line_of("action"), f"{where}.action", f"unknown action {action!r} (one of: {ACTIONS})")
            action = None
    say = b.text(node["say"], f"{where}.say", node.line_of("say"), b.step_ids) if "say" in node else None
    report = b.error
    when = parse_condition(node["when"], f"{where}.when", node.line_of("when"), report, steps) if "when" in node else None
    if action is None or say is None or ("when" in node and when is None):
        return None
    return OutcomeDef(oid, action, say, when, line)


def build(b: Builder, data: Any) -> Flow | None:
    """Build the flow, or None when anything is wrong (see `b.errors`)."""
    if not isinstance(data, MarkedDict):
        b.error(getattr(data, "line", None) or 1, "", f"a flow file must be a mapping (id, title, steps, outcomes), not {_kind(data)}")
        return None
    _duplicates(b, data, "")
    b.keys(data, "", 1, TOP_KEYS, ("id", "steps", "outcomes"))
    flow_id = b.string(data, "id", "")
    if flow_id is not None and not ID.match(flow_id):
        b.error(data.line_of("id"), "id", f"flow id {flow_id!r} must be lowercase letters, digits and _")
    language = b.string(data, "language", "", DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE
    if language not in SUPPORTED_LANGUAGES:
        b.error(data.line_of("language"), "language", f"unsupported language {language!r} (supported: {', '.join(SUPPORTED_LANGUAGES)})")
        language = DEFAULT_LANGUAGE
    extra = _strings(b, data["languages"], "languages", data.line_of("languages")) if "languages" in data else ()
    for lang in extra:
        if lang not in SUPPORTED_LANGUAGES:
            b.error(data.line_of("languages"), "languages", f"unsupported language {lang!r} (supported: {', '.join(SUPPORTED_LANGUAGES)})")
    b.language = language
    b.languages = tuple(dict.fromkeys([language, *(lang for lang in extra if lang in SUPPORTED_LANGUAGES)]))
    steps_node, outcomes_node = data.get("steps"), data.get("outcomes")
    if "steps" in data and (not isinstance(steps_node, MarkedDict) or not steps_node):
        b.error(data.line_of("steps"), "steps", "expected a mapping of step id to step, with at least one step")
        steps_node = None
    if "outcomes" in data and (not isinstance(outcomes_node, MarkedDict) or not outcomes_node):
        b.error(data.line_of("outcomes"), "outcomes", "expected a mapping of outcome id to outcome, with at least one")
        outcomes_node = None
    b.step_ids = [str(k) for k in (steps_node or {})]
    b.outcome_ids = [str(k) for k in (outcomes_node or {})]
    opt_out = _opt_out(b, data)
    voice = _voice(b, data)
    greeting = b.text(data["greeting"], "greeting", data.line_of("greeting"), b.step_ids) if "greeting" in data else None
    steps = {}
    for sid, node in (steps_node or {}).items():
        step = _step(b, str(sid), node, steps_node.line_of(sid), opt_out.digit if opt_out else None)
        if step:
            steps[step.id] = step
    outcomes = {}
    for oid, node in (outcomes_node or {}).items():
        outcome = _outcome(b, str(oid), node, outcomes_node.line_of(oid), steps)
        if outcome:
            outcomes[outcome.id] = outcome
    if steps_node and outcomes_node and len(steps) == len(steps_node):
        from bot.flows.graph import check_graph

        check_graph(b, steps, outcomes_node, outcomes, steps_node)
    if b.errors or flow_id is None or opt_out is None or not steps:
        return None
    title = b.string(data, "title", "title", flow_id) or flow_id
    return Flow(flow_id, title, language, b.languages, voice, greeting, steps, outcomes, opt_out)


def _duplicates(b: Builder, node: Any, where: str) -> None:
    """YAML keeps the last of two equal keys silently; staff almost always meant two different ones."""
    if isinstance(node, MarkedDict):
        for key, line in node.duplicates:
            b.error(line, where or "(top level)", f"duplicate key {key!r}")
        for key, value in node.items():
            _duplicates(b, value, _join(where, key))
    elif isinstance(node, MarkedList):
        for i, value in enumerate(node):
            _duplicates(b, value, f"{where}[{i}]")


def _voice(b: Builder, data: MarkedDict) -> dict[str, str]:
    node = data.get("voice", DEFAULT_VOICE)
    if isinstance(node, str):
        return {b.language: node}
    if isinstance(node, MarkedDict) and all(isinstance(v, str) for v in node.values()):
        for lang in node:
            if lang not in b.languages:
                b.error(node.line_of(lang), f"voice.{lang}", f"language {lang!r} is not declared")
        return {str(k): str(v) for k, v in node.items()}
    b.error(data.line_of("voice"), "voice", "expected a voice name (e.g. Polly.Joanna) or language -> voice")
    return {b.language: DEFAULT_VOICE}


def _opt_out(b: Builder, data: MarkedDict) -> OptOut | None:
    node = data.get("opt_out", MarkedDict())
    if not b.keys(node, "opt_out", data.line_of("opt_out"), OPT_OUT_KEYS):
        return None
    digit = _digit(b, node, "digit", "opt_out") if "digit" in node else DEFAULT_OPT_OUT_DIGIT
    words = _strings(b, node["words"], "opt_out.words", node.line_of("words")) if "words" in node else ()
    if "say" in node:
        say = b.text(node["say"], "opt_out.say", node.line_of("say"), b.step_ids)
    else:
        defaults = {lang: DEFAULT_OPT_OUT_SAY[lang] for lang in b.languages}
        say = Text({k: template_problems(v, [])[0] for k, v in defaults.items()}, defaults)  # type: ignore[misc]
    return OptOut(digit, say, words) if say else None
