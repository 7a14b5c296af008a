"""Schema of one step: its answer type, choices, `on` targets, reprompt and retries."""

from __future__ import annotations

from typing import Any

from bot.flows.builder import ID, Builder, keypad_digit, string_list
from bot.flows.model import DECIDE, DEFAULT_MAX_RETRIES, UNKNOWN, AnswerType, Choice, Step
from bot.flows.yamlmarks import MarkedDict, MarkedList, shown

STEP_KEYS = ("prompt", "type", "on", "reprompt", "max_retries", "on_fail", "choices", "synonyms", "hints")
CHOICE_KEYS = ("id", "label", "synonyms", "digit")
ANSWER_TYPES = ", ".join(t.value for t in AnswerType)


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
        digit = keypad_digit(b, item, "digit", here)
        if digit and digit in digits:
            b.error(
                item.line_of("digit"),
                f"{here}.digit",
                f"keypad digit {digit} used twice (also by '{digits[digit]}')",
            )
        elif digit and digit == opt_digit:
            b.error(item.line_of("digit"), f"{here}.digit", f"keypad digit {digit} is the opt-out digit")
        elif digit:
            digits[digit] = cid
        label = (
            b.text(item["label"], f"{here}.label", item.line_of("label"), b.step_ids)
            if "label" in item
            else None
        )
        labels = tuple(label.sources.values()) if label else ()
        synonyms = (
            string_list(b, item["synonyms"], f"{here}.synonyms", item.line_of("synonyms"))
            if "synonyms" in item
            else ()
        )
        result.append(Choice(cid, label, labels, synonyms, digit))
    with_digit = [c for c in result if c.digit]
    if with_digit and len(with_digit) != len(result):
        # Keypad hints number the options; a mix of set and unset digits would promise keys that do nothing.
        b.error(line, where, "give every option a keypad digit, or none (then they are numbered 1, 2, 3...)")
    return tuple(result)


def _on(
    b: Builder, step: MarkedDict, where: str, kind: AnswerType | None, choices: tuple[Choice, ...]
) -> dict[str, str]:
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
            b.error(
                step.line_of("on"),
                f"{where}.on",
                f"no target for {key if not answer_keys else repr(key)}; {hint}",
            )
    return on


def build_step(b: Builder, sid: str, node: Any, line: int, opt_digit: str | None) -> Step | None:
    where = f"steps.{sid}"
    if not ID.match(sid) or sid == DECIDE:
        b.error(line, where, f"step id {sid!r} must be lowercase letters, digits and _ (and not 'decide')")
    if not b.keys(node, where, line, STEP_KEYS, ("prompt", "type", "on")):
        return None
    kind = None
    raw_type = node.get("type")
    if raw_type is not None:
        try:
            kind = AnswerType(raw_type if isinstance(raw_type, str) else "")
        except ValueError:
            b.error(
                node.line_of("type"),
                f"{where}.type",
                f"unknown answer type {shown(raw_type)} (one of: {ANSWER_TYPES})",
            )
    choices: tuple[Choice, ...] = ()
    if kind == AnswerType.CHOICE:
        choices = _choices(b, node.get("choices"), f"{where}.choices", node.line_of("choices"), opt_digit)
    elif "choices" in node:
        b.error(node.line_of("choices"), f"{where}.choices", "only choice steps have choices")
    if "synonyms" in node:
        if kind == AnswerType.YES_NO and b.keys(
            node["synonyms"], f"{where}.synonyms", node.line_of("synonyms"), ("yes", "no")
        ):
            syn = node["synonyms"]
            choices = tuple(
                Choice(k, None, (), string_list(b, syn[k], f"{where}.synonyms.{k}", syn.line_of(k)), None)
                for k in ("yes", "no")
                if k in syn
            )
        elif kind != AnswerType.YES_NO:
            b.error(
                node.line_of("synonyms"),
                f"{where}.synonyms",
                "only yes_no steps take synonyms (choices have their own)",
            )
    on = _on(b, node, where, kind, choices) if "on" in node else {}
    prompt = (
        b.text(node["prompt"], f"{where}.prompt", node.line_of("prompt"), b.step_ids)
        if "prompt" in node
        else None
    )
    reprompt = (
        b.text(node["reprompt"], f"{where}.reprompt", node.line_of("reprompt"), b.step_ids)
        if "reprompt" in node
        else None
    )
    retries = node.get("max_retries", DEFAULT_MAX_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        b.error(
            node.line_of("max_retries"),
            f"{where}.max_retries",
            f"expected a whole number from 0 to 5, got {shown(retries)}",
        )
        retries = DEFAULT_MAX_RETRIES
    on_fail = (
        b.target(node["on_fail"], f"{where}.on_fail", node.line_of("on_fail"))
        if "on_fail" in node
        else DECIDE
    )
    hints = string_list(b, node["hints"], f"{where}.hints", node.line_of("hints")) if "hints" in node else ()
    if kind is None or prompt is None:
        return None
    return Step(sid, prompt, kind, on, reprompt, retries, on_fail or DECIDE, choices, hints, line)
