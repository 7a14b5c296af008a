"""Turn marked YAML into a Flow, collecting every schema, template and reference error on the way."""

from __future__ import annotations

from typing import Any

from bot.flows.builder import ID, Builder, keypad_digit, kind_of, report_duplicates, string_list
from bot.flows.conditions import parse_condition
from bot.flows.graph import check_graph
from bot.flows.model import (
    DEFAULT_LANGUAGE,
    DEFAULT_OPT_OUT_DIGIT,
    DEFAULT_VOICE,
    OPT_OUT_ID,
    SUPPORTED_LANGUAGES,
    ActionKind,
    Flow,
    OptOut,
    OutcomeDef,
    Step,
)
from bot.flows.schema_steps import build_step
from bot.flows.templates import Text, template_problems
from bot.flows.yamlmarks import MarkedDict, shown

__all__ = ["Builder", "build"]

TOP_KEYS = (
    "id",
    "title",
    "description",
    "language",
    "languages",
    "voice",
    "greeting",
    "steps",
    "outcomes",
    "opt_out",
    "voicemail",
)
VOICEMAIL_VARIABLES = ("callback_number",)
OUTCOME_KEYS = ("when", "say", "action")
OPT_OUT_KEYS = ("digit", "say", "words")
ACTIONS = "warm_transfer, handoff_sms, nurture:<sequence>, close, opt_out"
DEFAULT_OPT_OUT_SAY = {
    "en": "Understood. We won't contact you again. Goodbye.",
    "es": "Entendido. No le volveremos a contactar. Adiós.",
}


def _outcome(b: Builder, oid: str, node: Any, line: int, steps: dict[str, Step]) -> OutcomeDef | None:
    where = f"outcomes.{oid}"
    if not ID.match(oid) or oid == OPT_OUT_ID:
        why = (
            "is reserved (set the goodbye under opt_out.say)"
            if oid == OPT_OUT_ID
            else "must be lowercase letters, digits and _"
        )
        b.error(line, where, f"outcome id {oid!r} {why}")
    if not b.keys(node, where, line, OUTCOME_KEYS, ("say", "action")):
        return None
    action = b.string(node, "action", where)
    if action is not None:
        kind, _, sequence = action.partition(":")
        valid = kind in {a.value for a in ActionKind} and (
            bool(sequence.strip()) == (kind == ActionKind.NURTURE)
        )
        if not valid:
            b.error(
                node.line_of("action"),
                f"{where}.action",
                f"unknown action {shown(action)} (one of: {ACTIONS})",
            )
            action = None
    say = b.text(node["say"], f"{where}.say", node.line_of("say"), b.step_ids) if "say" in node else None
    report = b.error
    when = (
        parse_condition(node["when"], f"{where}.when", node.line_of("when"), report, steps)
        if "when" in node
        else None
    )
    if action is None or say is None or ("when" in node and when is None):
        return None
    return OutcomeDef(oid, action, say, when, line)


def build(b: Builder, data: Any) -> Flow | None:
    """Build the flow, or None when anything is wrong (see `b.errors`)."""
    if not isinstance(data, MarkedDict):
        b.error(
            getattr(data, "line", None) or 1,
            "",
            f"a flow file must be a mapping (id, title, steps, outcomes), not {kind_of(data)}",
        )
        return None
    report_duplicates(b, data, "")
    b.keys(data, "", 1, TOP_KEYS, ("id", "steps", "outcomes"))
    flow_id = b.string(data, "id", "")
    if flow_id is not None and not ID.match(flow_id):
        b.error(data.line_of("id"), "id", f"flow id {flow_id!r} must be lowercase letters, digits and _")
    language = b.string(data, "language", "", DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE
    if language not in SUPPORTED_LANGUAGES:
        b.error(
            data.line_of("language"),
            "language",
            f"unsupported language {shown(language)} (supported: {', '.join(SUPPORTED_LANGUAGES)})",
        )
        language = DEFAULT_LANGUAGE
    extra = (
        string_list(b, data["languages"], "languages", data.line_of("languages"))
        if "languages" in data
        else ()
    )
    for lang in extra:
        if lang not in SUPPORTED_LANGUAGES:
            b.error(
                data.line_of("languages"),
                "languages",
                f"unsupported language {lang!r} (supported: {', '.join(SUPPORTED_LANGUAGES)})",
            )
    b.language = language
    b.languages = tuple(dict.fromkeys([language, *(lang for lang in extra if lang in SUPPORTED_LANGUAGES)]))
    steps_node, outcomes_node = data.get("steps"), data.get("outcomes")
    if "steps" in data and (not isinstance(steps_node, MarkedDict) or not steps_node):
        b.error(
            data.line_of("steps"), "steps", "expected a mapping of step id to step, with at least one step"
        )
        steps_node = None
    if "outcomes" in data and (not isinstance(outcomes_node, MarkedDict) or not outcomes_node):
        b.error(
            data.line_of("outcomes"),
            "outcomes",
            "expected a mapping of outcome id to outcome, with at least one",
        )
        outcomes_node = None
    steps_node = steps_node if isinstance(steps_node, MarkedDict) else MarkedDict()
    outcomes_node = outcomes_node if isinstance(outcomes_node, MarkedDict) else MarkedDict()
    b.step_ids = [str(k) for k in steps_node]
    b.outcome_ids = [str(k) for k in outcomes_node]
    opt_out = _opt_out(b, data)
    voice = _voice(b, data)
    greeting = (
        b.text(data["greeting"], "greeting", data.line_of("greeting"), b.step_ids)
        if "greeting" in data
        else None
    )
    steps = {}
    for sid, node in steps_node.items():
        step = build_step(b, str(sid), node, steps_node.line_of(sid), opt_out.digit if opt_out else None)
        if step:
            steps[step.id] = step
    outcomes = {}
    for oid, node in outcomes_node.items():
        outcome = _outcome(b, str(oid), node, outcomes_node.line_of(oid), steps)
        if outcome:
            outcomes[outcome.id] = outcome
    if steps_node and outcomes_node and len(steps) == len(steps_node):
        check_graph(b, steps, outcomes_node, outcomes, steps_node)
    voicemail = (
        b.text(data["voicemail"], "voicemail", data.line_of("voicemail"), b.step_ids, VOICEMAIL_VARIABLES)
        if "voicemail" in data
        else None
    )
    if b.errors or flow_id is None or opt_out is None or not steps:
        return None
    title = b.string(data, "title", "title", flow_id) or flow_id
    return Flow(flow_id, title, language, b.languages, voice, greeting, steps, outcomes, opt_out,
                voicemail=voicemail)


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
    digit = keypad_digit(b, node, "digit", "opt_out") if "digit" in node else DEFAULT_OPT_OUT_DIGIT
    words = string_list(b, node["words"], "opt_out.words", node.line_of("words")) if "words" in node else ()
    if "say" in node:
        say = b.text(node["say"], "opt_out.say", node.line_of("say"), b.step_ids)
    else:
        defaults = {lang: DEFAULT_OPT_OUT_SAY[lang] for lang in b.languages}
        say = Text({k: template_problems(v, [])[0] for k, v in defaults.items()}, defaults)  # type: ignore[misc]
    return OptOut(digit, say, words) if say else None
