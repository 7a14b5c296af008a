"""Graph checks: every step is reachable and can end, every outcome can happen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.flows.model import DECIDE, OUTCOME_PREFIX, OutcomeDef, Step
from bot.flows.yamlmarks import MarkedDict

if TYPE_CHECKING:
    from bot.flows.builder import Builder


def _answers(step: Step) -> set[str]:
    return set(step.on.values())


def _all(step: Step) -> set[str]:
    return _answers(step) | {step.on_fail}


def reachable(steps: dict[str, Step]) -> set[str]:
    """Steps a conversation can get to from the first one (by answers or by failing)."""
    first = next(iter(steps))
    seen, stack = {first}, [first]
    while stack:
        for target in _all(steps[stack.pop()]):
            if target in steps and target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def can_finish(steps: dict[str, Step]) -> set[str]:
    """Steps from which some sequence of answers leads to an outcome."""
    done = {sid for sid, step in steps.items() if any(t not in steps for t in _answers(step))}
    grew = True
    while grew:
        grew = False
        for sid, step in steps.items():
            if sid not in done and _answers(step) & done:
                done.add(sid)
                grew = True
    return done


def fallback_of(outcomes_node: MarkedDict) -> str | None:
    """The first outcome without `when`: what `decide` picks when nothing else matches."""
    return next(
        (
            str(oid)
            for oid, node in outcomes_node.items()
            if isinstance(node, MarkedDict) and "when" not in node
        ),
        None,
    )


def check_graph(
    b: Builder,
    steps: dict[str, Step],
    outcomes_node: MarkedDict,
    outcomes: dict[str, OutcomeDef],
    steps_node: MarkedDict,
) -> None:
    """Report unreachable steps, steps that cannot end, and outcomes that can never happen."""
    seen = reachable(steps)
    finishing = can_finish(steps)
    for sid in steps:
        line = steps_node.line_of(sid)
        if sid not in seen:
            b.error(line, f"steps.{sid}", "step is never reached: no 'on' or 'on_fail' leads here")
        elif sid not in finishing:
            b.error(line, f"steps.{sid}", "step cannot reach any outcome: every answer loops back to a step")
    targets = {t for sid in seen for t in _all(steps[sid])}
    explicit = {t[len(OUTCOME_PREFIX) :] for t in targets if t.startswith(OUTCOME_PREFIX)}
    fallback = fallback_of(outcomes_node)
    decided: list[str] = []
    if DECIDE in targets:
        if fallback is None:
            b.error(
                outcomes_node.line,
                "outcomes",
                "a step goes to 'decide' but no outcome is a fallback (one without 'when'); "
                "add one so every lead gets an outcome",
            )
        for oid in outcomes_node:
            decided.append(str(oid))
            if oid == fallback:
                break
    for oid in outcomes_node:
        if oid in explicit or oid in decided:
            continue
        if DECIDE in targets:
            why = (
                f"'decide' stops at '{fallback}' (the first outcome without 'when') and no step goes to "
                f"'outcome:{oid}'; move '{fallback}' below it or give '{fallback}' a 'when'"
            )
        else:
            why = f"no step goes to 'decide' or 'outcome:{oid}'"
        b.error(outcomes_node.line_of(oid), f"outcomes.{oid}", f"outcome can never be reached: {why}")
