"""The pure conversation engine: (flow, state, event) -> (state, prompts, outcome). No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.flows.answers import NOT_UNDERSTOOD, is_opt_out, parse_for_step
from bot.flows.conditions import evaluate
from bot.flows.errors import ConversationError, FlowsError
from bot.flows.model import (
    DECIDE,
    KEYPAD_TYPES,
    OPT_OUT_ID,
    OUTCOME_PREFIX,
    UNKNOWN,
    ActionKind,
    AnswerType,
    Channel,
    Flow,
    OutcomeDef,
    Step,
)
from bot.flows.templates import LEAD_FIELDS, AnswerView, Text, context
from bot.flows.turns import Event, EventKind, Outcome, Prompt, PromptKind

__all__ = [
    "Event",
    "EventKind",
    "Outcome",
    "Prompt",
    "PromptKind",
    "decide",
    "opt_out",
    "prompt_for",
    "repeat",
    "start",
    "step",
]

STATE_FORMAT = 1
MAX_TURNS = 40  # a flow whose answers loop (e.g. "confirm your number? no") still ends


def _language(flow: Flow, wanted: str | None) -> str:
    lang = (wanted or "").split("-")[0].split("_")[0].lower()
    return lang if lang in flow.languages else flow.language


def _views(
    flow: Flow, answers: Mapping[str, Any], raw: Mapping[str, str], lang: str
) -> dict[str, AnswerView]:
    views = {}
    for sid, value in answers.items():
        step = flow.steps.get(sid)
        choice = step.choice(str(value)) if step and step.type == AnswerType.CHOICE else None
        label = (
            choice.label.sources.get(lang) or next(iter(choice.label.sources.values()))
            if choice and choice.label
            else ""
        )
        views[sid] = AnswerView(value, raw.get(sid, "" if value is None else str(value)), label)
    return views


def _render(flow: Flow, text: Text, state: Mapping[str, Any]) -> str:
    literal = text.literal(state["language"], flow.language)
    if literal is not None:
        return literal
    views = _views(flow, state["answers"], state["raw"], state["language"])
    return text.render(state["language"], flow.language, context(state["lead"], flow.steps, views))


def _keys(step: Step, lang: str) -> tuple[tuple[str, str], ...]:
    if step.type == AnswerType.YES_NO:
        return (("1", "sí" if lang == "es" else "yes"), ("2", "no"))
    if step.type == AnswerType.CHOICE:
        return tuple(
            (c.digit or str(i + 1), (c.label.sources.get(lang) if c.label else None) or c.id)
            for i, c in enumerate(step.choices)
            if len(step.choices) < 10
        )
    return ()


def _question(flow: Flow, step: Step, state: Mapping[str, Any], kind: PromptKind) -> Prompt:
    lang = state["language"]
    text = step.reprompt if kind == PromptKind.REPROMPT and step.reprompt else step.prompt
    keys = _keys(step, lang)
    hints = [label for _, label in keys] + [s for c in step.choices for s in c.synonyms] + list(step.hints)
    return Prompt(
        _render(flow, text, state),
        kind,
        lang,
        flow.voice_for(lang),
        step.id,
        step.type.value,
        tuple(dict.fromkeys(hints)),
        1 if step.type in KEYPAD_TYPES and keys else None,
        keys,
    )


def _outcome(flow: Flow, spec: OutcomeDef | None, state: dict[str, Any], reason: str) -> Outcome:
    lang = state["language"]
    say: Text | None
    if spec is None:
        oid, action, say = OPT_OUT_ID, ActionKind.OPT_OUT.value, flow.opt_out.say
    else:
        oid, action, say = spec.id, spec.action, spec.say
    state.update(done=True, outcome=oid, step=None)
    text = _render(flow, say, state) if say else ""
    return Outcome(oid, action, text, dict(state["answers"]), reason, lang, flow.voice_for(lang))


def decide(
    flow: Flow,
    answers: Mapping[str, Any],
    lead: Mapping[str, Any] | None = None,
    language: str | None = None,
    *,
    reason: str = "",
) -> Outcome:
    """Evaluate the flow's outcomes in order against `answers` (step id -> normalized value)."""
    lead = dict(lead or {})
    state = _new_state(flow, lead, Channel.SMS, language or lead.get("language"))
    state["answers"] = {k: v for k, v in answers.items() if k in flow.steps}
    return _decide(flow, state, reason)


def _decide(flow: Flow, state: dict[str, Any], reason: str) -> Outcome:
    for spec in flow.outcomes.values():
        if spec.when is None or evaluate(spec.when, state["answers"]):
            why = f"matched {spec.when.describe()}" if spec.when else "fallback outcome"
            return _outcome(flow, spec, state, f"{reason}; {why}" if reason else why)
    raise FlowsError(f"flow {flow.id!r}: no outcome matched and the flow has no fallback outcome")


def _lead(lead: Mapping[str, Any]) -> dict[str, Any]:
    fields = {f: lead.get(f) for f in LEAD_FIELDS}
    if not fields["first_name"] and fields["name"]:
        fields["first_name"] = str(fields["name"]).split()[0]
    return fields


def prompt_for(
    flow: Flow,
    step_id: str,
    lead: Mapping[str, Any] | None = None,
    language: str | None = None,
    answers: Mapping[str, Any] | None = None,
    *,
    reprompt: bool = False,
) -> Prompt:
    """One step's question (or reprompt) outside a running conversation, e.g. for a Rasa form."""
    lead = dict(lead or {})
    state = _new_state(flow, lead, Channel.SMS, language or lead.get("language"))
    state["answers"] = dict(answers or {})
    kind = PromptKind.REPROMPT if reprompt else PromptKind.QUESTION
    return _question(flow, flow.steps[step_id], state, kind)


def opt_out(
    flow: Flow,
    answers: Mapping[str, Any],
    lead: Mapping[str, Any] | None = None,
    language: str | None = None,
    *,
    reason: str = "opt-out",
) -> Outcome:
    """The opt-out outcome with the flow's goodbye line."""
    lead = dict(lead or {})
    state = _new_state(flow, lead, Channel.SMS, language or lead.get("language"))
    state["answers"] = {k: v for k, v in answers.items() if k in flow.steps}
    return _outcome(flow, None, state, reason)


def _new_state(flow: Flow, lead: Mapping[str, Any], channel: Channel, language: str | None) -> dict[str, Any]:
    return {
        "format": STATE_FORMAT,
        "flow_id": flow.id,
        "version": flow.version,
        "channel": channel.value,
        "language": _language(flow, language),
        "lead": _lead(lead),
        "step": flow.first_step,
        "answers": {},
        "raw": {},
        "retries": 0,
        "turns": 0,
        "done": False,
        "outcome": None,
    }


def start(
    flow: Flow, lead: Mapping[str, Any], channel: str
) -> tuple[dict[str, Any], list[Prompt], Outcome | None]:
    """Begin a conversation: the greeting and the first question."""
    state = _new_state(flow, lead, Channel.parse(channel), lead.get("language"))
    prompts = []
    if flow.greeting:
        lang = state["language"]
        prompts.append(
            Prompt(_render(flow, flow.greeting, state), PromptKind.GREETING, lang, flow.voice_for(lang))
        )
    prompts.append(_question(flow, flow.steps[flow.first_step], state, PromptKind.QUESTION))
    return state, prompts, None


def _go(flow: Flow, state: dict[str, Any], target: str, reason: str) -> tuple[list[Prompt], Outcome | None]:
    if target == DECIDE:
        return [], _decide(flow, state, reason)
    if target.startswith(OUTCOME_PREFIX):
        return [], _outcome(flow, flow.outcomes[target[len(OUTCOME_PREFIX) :]], state, reason)
    state.update(step=target, retries=0)
    return [_question(flow, flow.steps[target], state, PromptKind.QUESTION)], None


def _miss(flow: Flow, step: Step, state: dict[str, Any], why: str) -> tuple[list[Prompt], Outcome | None]:
    state["retries"] += 1
    if state["retries"] > step.max_retries:
        tries = state["retries"]
        return _go(flow, state, step.on_fail, f"{why} at step '{step.id}' after {tries} tries")
    return [_question(flow, step, state, PromptKind.REPROMPT)], None


def repeat(flow: Flow, state: Mapping[str, Any]) -> list[Prompt]:
    """The question the conversation waits on, asked again: the answer to a replayed webhook."""
    if state.get("done") or state.get("step") not in flow.steps:
        return []
    return [_question(flow, flow.steps[state["step"]], state, PromptKind.QUESTION)]


def step(
    flow: Flow, state: Mapping[str, Any], event: Event, *, now: datetime | None = None, region: str = "US"
) -> tuple[dict[str, Any], list[Prompt], Outcome | None]:
    """Apply one event; returns a new state (the input is not modified), prompts and maybe an outcome."""
    if state.get("flow_id") != flow.id or state.get("version") != flow.version:
        raise ConversationError(
            f"state is pinned to version {str(state.get('version'))[:12]} of flow {state.get('flow_id')!r}; "
            f"load that version (FlowRegistry.get) instead of {flow.version[:12]}",
            flow_id=flow.id,
        )
    if state.get("done"):
        raise ConversationError(
            f"conversation already ended with outcome {state.get('outcome')!r}", flow_id=flow.id
        )
    new = {**state, "answers": dict(state["answers"]), "raw": dict(state["raw"]), "turns": state["turns"] + 1}
    current = flow.steps[new["step"]]
    digits = event.digits.strip() if event.kind == EventKind.ANSWER else ""
    text = event.text.strip() if event.kind == EventKind.ANSWER else ""
    keypad = digits if current.type in KEYPAD_TYPES else ""
    if (text or digits) and is_opt_out(text, keypad, flow.opt_out.digit, flow.opt_out.words):
        said = text or f"key {digits}"
        return new, [], _outcome(flow, None, new, f"opt-out ({said!r}) at step '{current.id}'")
    if new["turns"] > MAX_TURNS:
        return (new, *_go(flow, new, DECIDE, f"conversation reached {MAX_TURNS} turns"))
    if not text and not digits:
        return (new, *_miss(flow, current, new, "silence"))
    value = parse_for_step(
        current,
        text,
        digits,
        language=new["language"],
        now=now,
        region=region,
        current_phone=new["lead"].get("phone"),
    )
    key = value if current.type in KEYPAD_TYPES else (UNKNOWN if value == UNKNOWN else "default")
    target = current.target_for(str(key)) if value is not NOT_UNDERSTOOD else None
    if target is None:
        return (new, *_miss(flow, current, new, "no usable answer"))
    new["answers"][current.id] = value
    new["raw"][current.id] = text or digits
    return (new, *_go(flow, new, target, f"answer {text or digits!r} at step '{current.id}'"))
