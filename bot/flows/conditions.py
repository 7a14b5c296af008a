"""Outcome conditions as data: `all`/`any`/`not` over `{answer: step, <operator>: arg}` leaves."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.flows.model import UNKNOWN, AnswerType, Condition, Group, Leaf, Step
from bot.flows.yamlmarks import MarkedDict, MarkedList, shown

T = AnswerType
NUMERIC = frozenset({T.NUMBER, T.MONEY})
EQUALITY = frozenset({T.YES_NO, T.CHOICE, T.TEXT, T.EMAIL, T.PHONE, T.NUMBER})


def _low(value: Any) -> float:
    return value.get("min", -math.inf) if isinstance(value, dict) else float(value)


def _high(value: Any) -> float:
    if isinstance(value, dict):
        top = value.get("max")
        return math.inf if top is None else top
    return float(value)


def _same(value: Any, arg: Any) -> bool:
    if isinstance(value, str) and isinstance(arg, str):
        return value.casefold() == arg.casefold()
    return bool(value == arg)


def _days(value: Any) -> int | None:
    return value.get("days_from_now") if isinstance(value, dict) else None


@dataclass(frozen=True)
class Operator:
    """One condition operator: which answer types it fits, how to check its argument and test."""

    types: frozenset[AnswerType] | None
    check: Callable[[Any, Step], str | None]
    test: Callable[[Any, Any], bool]


def _check_value(arg: Any, step: Step) -> str | None:
    if step.type == T.YES_NO and arg not in ("yes", "no", UNKNOWN):
        return f"expects yes, no or unknown for a yes_no step, not {shown(arg)}"
    if step.type == T.CHOICE and arg != UNKNOWN and (not isinstance(arg, str) or step.choice(arg) is None):
        options = ", ".join(c.id for c in step.choices)
        return f"{shown(arg)} is not an option of step '{step.id}' ({options})"
    if step.type in (T.MONEY, T.TIMEFRAME) and arg != UNKNOWN:
        return f"can only compare a {step.type.value} answer with 'unknown'; use gte/lte/within_days"
    return None


def _check_list(arg: Any, step: Step) -> str | None:
    if not isinstance(arg, list) or not arg:
        return "expects a non-empty list"
    return next((m for m in (_check_value(a, step) for a in arg) if m), None)


def _check_number(arg: Any, step: Step) -> str | None:
    ok = isinstance(arg, int | float) and not isinstance(arg, bool)
    return None if ok else f"expects a number, not {shown(arg)}"


def _check_days(arg: Any, step: Step) -> str | None:
    ok = isinstance(arg, int) and not isinstance(arg, bool) and arg >= 0
    return None if ok else f"expects a whole number of days, not {shown(arg)}"


def _check_bool(arg: Any, step: Step) -> str | None:
    return None if isinstance(arg, bool) else f"expects true or false, not {shown(arg)}"


def _check_text(arg: Any, step: Step) -> str | None:
    return None if isinstance(arg, str) and arg else f"expects text, not {shown(arg)}"


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


OPERATORS: dict[str, Operator] = {
    "is": Operator(None, _check_value, _same),
    "is_not": Operator(None, _check_value, lambda v, a: not _same(v, a)),
    "in": Operator(EQUALITY, _check_list, lambda v, a: any(_same(v, x) for x in a)),
    "gte": Operator(NUMERIC, _check_number, lambda v, a: _high(v) >= a),
    "gt": Operator(NUMERIC, _check_number, lambda v, a: _high(v) > a),
    "lte": Operator(NUMERIC, _check_number, lambda v, a: _low(v) <= a),
    "lt": Operator(NUMERIC, _check_number, lambda v, a: _low(v) < a),
    "within_days": Operator(
        frozenset({T.TIMEFRAME}), _check_days, lambda v, a: _days(v) is not None and _days(v) <= a
    ),
    "beyond_days": Operator(
        frozenset({T.TIMEFRAME}), _check_days, lambda v, a: _days(v) is None or _days(v) > a
    ),
    "contains": Operator(frozenset({T.TEXT}), _check_text, lambda v, a: a.casefold() in str(v).casefold()),
    "known": Operator(None, _check_bool, lambda v, a: _known(v) == a),
}
GROUPS = ("all", "any", "not")
# Operators that order or search a value; "unknown" never satisfies them.
ORDERED = ("gte", "gt", "lte", "lt", "within_days", "beyond_days", "contains")


def evaluate(cond: Condition, answers: Mapping[str, Any]) -> bool:
    """True when `answers` (step id -> normalized value) satisfy `cond`."""
    if isinstance(cond, Group):
        results = (evaluate(item, answers) for item in cond.items)
        if cond.kind == "all":
            return all(results)
        if cond.kind == "any":
            return any(results)
        return not all(results)
    value = answers.get(cond.answer)
    if cond.op == "known":
        return OPERATORS["known"].test(value, cond.arg)
    if value is None or (value == UNKNOWN and cond.op in ORDERED):
        return False
    try:
        return OPERATORS[cond.op].test(value, cond.arg)
    except (TypeError, ValueError, AttributeError):
        # A value of the wrong shape (e.g. answers posted by another system) simply does not match.
        return False


Report = Callable[[int | None, str, str], None]  # (line, where, message)


def parse_condition(
    node: Any, where: str, line: int, report: Report, steps: Mapping[str, Step]
) -> Condition | None:
    """Build a condition from YAML, reporting every problem; None when unusable."""
    if not isinstance(node, MarkedDict) or not node:
        report(line, where, "a condition must be a mapping like {answer: step, is: yes} or {all: [...]}")
        return None
    line = node.line or line
    groups = [k for k in node if k in GROUPS]
    if groups:
        extra = [k for k in node if k != groups[0]]
        if extra:
            report(node.line_of(extra[0]), where, f"'{groups[0]}' cannot be combined with {extra[0]!r}")
        return _parse_group(
            groups[0], node[groups[0]], f"{where}.{groups[0]}", node.line_of(groups[0]), report, steps
        )
    if "answer" not in node:
        report(line, where, "a condition needs 'answer: <step>' or one of all/any/not")
        return None
    step_id = node["answer"]
    ops = [k for k in node if k != "answer"]
    unknown_ops = [k for k in ops if k not in OPERATORS]
    for op in unknown_ops:
        known = ", ".join(OPERATORS)
        report(node.line_of(op), f"{where}.{op}", f"unknown operator {op!r} (known: {known})")
    ops = [k for k in ops if k in OPERATORS]
    if len(ops) + len(unknown_ops) != 1:
        if not unknown_ops:
            report(line, where, "a condition needs exactly one operator besides 'answer'")
        return None
    if unknown_ops:
        return None
    op = ops[0]
    step = steps.get(step_id) if isinstance(step_id, str) else None
    if step is None:
        report(node.line_of("answer"), f"{where}.answer", f"unknown step {shown(step_id)}")
        return None
    spec = OPERATORS[op]
    if spec.types is not None and step.type not in spec.types:
        report(
            node.line_of(op), f"{where}.{op}", f"cannot apply to step '{step_id}' ({step.type.value} answers)"
        )
        return None
    problem = spec.check(node[op], step)
    if problem:
        report(node.line_of(op), f"{where}.{op}", problem)
        return None
    arg = [str(a) for a in node[op]] if op == "in" and step.type != T.NUMBER else node[op]
    return Leaf(str(step_id), op, str(arg) if isinstance(arg, str) else arg)


def _parse_group(
    kind: str, value: Any, where: str, line: int, report: Report, steps: Mapping[str, Step]
) -> Condition | None:
    if kind == "not":
        inner = parse_condition(value, where, line, report, steps)
        return Group("not", (inner,)) if inner else None
    if not isinstance(value, MarkedList) or not value:
        report(line, where, f"'{kind}' expects a non-empty list of conditions")
        return None
    items = [
        parse_condition(v, f"{where}[{i}]", value.line_of(i), report, steps) for i, v in enumerate(value)
    ]
    return Group(kind, tuple(i for i in items if i)) if all(items) else None
