"""The pure engine on the shipped flows: every outcome by text and by keypad, retries, opt-out, templates."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.flows import engine
from bot.flows.engine import Event, PromptKind
from bot.flows.errors import ConversationError
from bot.flows.model import Flow

from .conftest import LEAD, NOW


def run(flow: Flow, turns: list[Any], lead: dict[str, Any] | None = None, channel: str = "voice"):
    """Drive a conversation; a str turn is speech/SMS text, ("digits", "1") is a keypress, None is silence."""
    state, prompts, outcome = engine.start(flow, lead or LEAD, channel)
    for turn in turns:
        assert outcome is None, f"conversation ended early with {outcome}"
        if turn is None:
            event = Event.silence()
        elif isinstance(turn, tuple):
            event = Event.answer(digits=turn[1])
        else:
            event = Event.answer(turn)
        state = json.loads(json.dumps(state))  # state must survive a trip through the database
        state, prompts, outcome = engine.step(flow, state, event, now=NOW)
    return state, prompts, outcome


PREQUAL_PATHS = [
    ("qualified_ready", "warm_transfer", ["yeah sure", "about five grand", "asap", "I'm the homeowner"]),
    ("qualified_ready", "warm_transfer", [("d", "1"), ("d", "8000"), "right away", ("d", "2")]),
    ("qualified_not_ready", "nurture:not_ready", ["yes", "not sure yet", "next year", "my wife decides"]),
    ("qualified_not_ready", "nurture:not_ready", [("d", "1"), ("d", "3000"), "in the fall", ("d", "3")]),
    ("not_a_fit", "close", ["nope"]),
    ("not_a_fit", "close", [("d", "2")]),
    ("not_a_fit", "close", ["yes", "nothing", "asap", "me"]),  # no budget at all: the fallback
]


@pytest.mark.parametrize(("outcome_id", "action", "turns"), PREQUAL_PATHS)
def test_prequal_outcomes(prequal: Flow, outcome_id: str, action: str, turns: list[Any]) -> None:
    state, prompts, outcome = run(prequal, turns)
    assert outcome is not None and prompts == []
    assert (outcome.id, outcome.action) == (outcome_id, action)
    assert state["done"] is True and state["outcome"] == outcome_id and state["step"] is None
    assert "Maria" in outcome.say


ROOFING_PATHS = [
    ("emergency", "warm_transfer", ["yes, it's dripping"]),
    ("emergency", "warm_transfer", [("d", "1")]),
    ("renter", "close", ["no", "we rent"]),
    ("renter", "close", [("d", "2"), ("d", "2")]),
    (
        "ready_replacement",
        "warm_transfer",
        ["no", "yes", "the whole roof needs replacing", "$12k", "in two weeks"],
    ),
    ("ready_replacement", "warm_transfer", [("d", "2"), ("d", "1"), ("d", "2"), "I don't know yet", "asap"]),
    (
        "ready_small_job",
        "handoff_sms",
        ["no", "I'm the owner", "just a repair", "a few hundred", "this week"],
    ),
    ("ready_small_job", "handoff_sms", [("d", "2"), ("d", "1"), ("d", "3"), ("d", "500"), "tomorrow"]),
    ("later", "nurture:roofing_later", ["no", "yes", "inspection", "no idea", "next spring"]),
    ("later", "nurture:roofing_later", [("d", "2"), ("d", "1"), ("d", "1"), ("d", "900"), "not for a year"]),
    ("polite_close", "close", ["no", "yes", "new roof", "3 grand", "right away"]),
    ("polite_close", "close", [("d", "2"), ("d", "1"), ("d", "2"), ("d", "3000"), "asap"]),
]


@pytest.mark.parametrize(("outcome_id", "action", "turns"), ROOFING_PATHS)
def test_roofing_outcomes(roofing: Flow, outcome_id: str, action: str, turns: list[Any]) -> None:
    _, _, outcome = run(roofing, turns)
    assert outcome is not None
    assert (outcome.id, outcome.action) == (outcome_id, action)


def test_outcome_carries_answers_and_reason(prequal: Flow) -> None:
    state, _, outcome = run(prequal, ["yes", "between 3 and 5 thousand", "in 2 weeks", "we decide together"])
    assert outcome is not None and outcome.id == "qualified_ready"
    assert outcome.answers == {
        "need": "yes",
        "budget": {"min": 3000, "max": 5000, "currency": "USD"},
        "timing": {"kind": "date", "days_from_now": 14, "start": "2025-03-24", "end": "2025-03-24"},
        "authority": "shared",
    }
    assert state["raw"]["authority"] == "we decide together"
    assert outcome.reason.startswith("answer 'we decide together' at step 'authority'; matched all(")
    assert outcome.kind.value == "warm_transfer" and outcome.sequence is None


def test_no_match_and_silence_reprompt_then_on_fail(prequal: Flow) -> None:
    state, prompts, outcome = engine.start(prequal, LEAD, "voice")
    first = prompts[-1].text
    state, prompts, outcome = engine.step(prequal, state, Event.answer("purple elephant"))
    assert outcome is None and state["retries"] == 1 and state["step"] == "need"
    assert [p.kind for p in prompts] == [PromptKind.REPROMPT]
    assert prompts[0].text.startswith("Sorry, I didn't catch that.") and prompts[0].text != first
    state, prompts, outcome = engine.step(prequal, state, Event.silence())
    assert outcome is None and state["retries"] == 2 and prompts[0].kind == PromptKind.REPROMPT
    state, prompts, outcome = engine.step(prequal, state, Event.answer(""))  # empty counts as silence
    assert outcome is not None and outcome.id == "not_a_fit"
    assert outcome.reason == "silence at step 'need' after 3 tries"


def test_on_fail_can_move_on_to_the_next_step(prequal: Flow) -> None:
    state, _, _ = run(prequal, ["yes"])
    for _ in range(3):
        state, prompts, outcome = engine.step(prequal, state, Event.answer("banana"))
    assert outcome is None and state["step"] == "timing" and state["retries"] == 0
    assert "budget" not in state["answers"] and prompts[0].step == "timing"


def test_unknown_is_an_answer_not_a_miss(prequal: Flow) -> None:
    state, prompts, _ = run(prequal, ["yes", "I don't know yet"])
    assert state["answers"]["budget"] == "unknown" and state["step"] == "timing" and state["retries"] == 0


@pytest.mark.parametrize(
    "words",
    [
        "STOP",
        "stop.",
        "Please stop calling me",
        "take me off your list",
        "UNSUBSCRIBE",
        "do not call",
        "no me llames",
        "QUIT",
    ],
)
@pytest.mark.parametrize("at", [0, 2, 3])
def test_opt_out_wins_anywhere(prequal: Flow, words: str, at: int) -> None:
    before = ["yes", "5000", "asap"][:at]
    _, prompts, outcome = run(prequal, [*before, words])
    assert outcome is not None and (outcome.id, outcome.action) == ("opt_out", "opt_out")
    assert prompts == [] and outcome.say == "Understood. We won't contact you again. Goodbye."
    assert outcome.reason.startswith("opt-out (")


def test_opt_out_digit_only_where_one_key_answers(prequal: Flow, roofing: Flow) -> None:
    _, _, outcome = run(prequal, [("d", "9")])
    assert outcome is not None and outcome.id == "opt_out"
    state, _, outcome = run(prequal, ["yes", ("d", "9")])  # on the money step 9 is an amount
    assert outcome is None and state["answers"]["budget"] == {"min": 9, "max": 9, "currency": "USD"}
    _, _, outcome = run(roofing, ["STOP"])
    assert outcome is not None and outcome.say == "No problem, we'll take you off our list. Goodbye."


def test_words_that_merely_contain_stop_are_answers(prequal: Flow) -> None:
    state, _, outcome = run(prequal, ["yes", "5k", "by the end of the month"])
    assert outcome is None and state["step"] == "authority"
    assert state["answers"]["timing"]["kind"] == "window"


def test_templates_render_lead_fields_and_fallbacks(prequal: Flow) -> None:
    _, prompts, _ = engine.start(prequal, LEAD, "sms")
    assert prompts[0].kind == PromptKind.GREETING
    assert prompts[0].text == (
        "Hi Maria, this is the team you just contacted about a new roof. "
        "I have four quick questions so we can help you faster."
    )
    assert prompts[1].text == "Are you looking for a new roof right now?"
    _, prompts, _ = engine.start(prequal, {"name": "Bo"}, "sms")
    assert prompts[0].text.startswith("Hi Bo, this is the team you just contacted. I have")
    assert prompts[1].text == "Are you looking for help with a project right now?"


def test_text_without_markup_is_a_literal_and_text_with_markup_is_rendered(prequal: Flow) -> None:
    budget, need = prequal.steps["budget"].prompt, prequal.steps["need"].prompt
    assert budget.literal("es", "en") is not None and budget.literal("es", "en").startswith("¿Más o menos")
    assert budget.literal("fr", "en") == " ".join(budget.sources["en"].split())
    assert need.literal("en", "en") is None  # {{ lead.service }} differs per lead
    state, _, _ = engine.start(prequal, LEAD, "sms")
    _, prompts, _ = engine.step(prequal, state, Event.answer("yes"), now=NOW)
    assert prompts[0].text == budget.literal("en", "en")


def test_spanish_lead_gets_spanish_text_voice_and_parsing(prequal: Flow) -> None:
    lead = {**LEAD, "language": "es-MX"}
    state, prompts, _ = engine.start(prequal, lead, "voice")
    assert state["language"] == "es" and prompts[1].voice == "Polly.Lupe"
    assert prompts[1].text == "¿Está buscando a new roof en este momento?"
    _, _, outcome = run(prequal, ["sí", "cinco mil dólares", "lo antes posible", "soy el dueño"], lead=lead)
    assert outcome is not None and outcome.id == "qualified_ready"
    assert outcome.say.startswith("Excelente, Maria.") and outcome.language == "es"


def test_unsupported_language_falls_back_to_the_flow_language(prequal: Flow) -> None:
    state, prompts, _ = engine.start(prequal, {**LEAD, "language": "fr"}, "sms")
    assert state["language"] == "en" and prompts[1].text.startswith("Are you looking")


def test_prompts_describe_expected_input(prequal: Flow) -> None:
    state, prompts, _ = engine.start(prequal, LEAD, "voice")
    ask = prompts[-1]
    assert (ask.step, ask.answer_type, ask.num_digits) == ("need", "yes_no", 1)
    assert ask.keys == (("1", "yes"), ("2", "no")) and ask.expects_input and not prompts[0].expects_input
    state, prompts, _ = engine.step(prequal, state, Event.answer("yes"))
    assert (prompts[0].step, prompts[0].answer_type, prompts[0].num_digits) == ("budget", "money", None)
    _, prompts, _ = run(prequal, ["yes", "5k", "asap"])
    assert prompts[0].num_digits == 1 and prompts[0].keys[2] == ("3", "Someone else")
    assert {"homeowner", "together", "my boss", "Me"} <= set(prompts[0].hints)


def test_step_does_not_mutate_its_input(prequal: Flow) -> None:
    state, _, _ = engine.start(prequal, LEAD, "sms")
    snapshot = json.dumps(state, sort_keys=True)
    engine.step(prequal, state, Event.answer("yes"))
    assert json.dumps(state, sort_keys=True) == snapshot


def test_finished_or_foreign_state_is_refused(prequal: Flow) -> None:
    state, _, _ = run(prequal, ["no"])
    with pytest.raises(ConversationError, match="already ended with outcome 'not_a_fit'"):
        engine.step(prequal, state, Event.answer("yes"))
    fresh, _, _ = engine.start(prequal, LEAD, "sms")
    other = dataclasses.replace(prequal, version="0" * 64)
    with pytest.raises(ConversationError, match="pinned to version"):
        engine.step(other, fresh, Event.answer("yes"))


def test_decide_on_plain_answers(prequal: Flow) -> None:
    ready = {"need": "yes", "budget": "unknown", "timing": {"days_from_now": 3}, "authority": "me"}
    assert engine.decide(prequal, ready).id == "qualified_ready"
    assert engine.decide(prequal, {**ready, "timing": {"days_from_now": 90}}).id == "qualified_not_ready"
    assert engine.decide(prequal, {**ready, "authority": "unknown"}).id == "qualified_not_ready"
    assert engine.decide(prequal, {**ready, "need": "no"}).id == "not_a_fit"
    assert engine.decide(prequal, {**ready, "budget": {"min": 0, "max": 0}}).id == "not_a_fit"
    assert engine.decide(prequal, {"junk": 1, "timing": "garbage"}).id == "not_a_fit"
    spoken = engine.decide(prequal, ready, {"name": "Lee Park"}, "es")
    assert spoken.say.startswith("Excelente, Lee.") and spoken.answers == ready


def test_engine_imports_no_web_or_queue_code() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bot.flows.engine, bot.flows.answers, bot.flows.registry; "
        "bad = [m for m in ('flask', 'twilio', 'redis', 'sqlalchemy', 'rq') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_one_turn_is_fast(prequal: Flow) -> None:
    from bot.flows import sms_render as sms

    state, _, _ = run(prequal, ["yes"])
    engine.step(prequal, state, Event.answer("warm up: about five grand"), now=NOW)
    answers = ["between 3 and 5 thousand", "around five grand", "I don't know yet", "$12,000"]
    rounds = 200
    began = time.perf_counter()
    for i in range(rounds):
        _, prompts, outcome = engine.step(prequal, state, Event.answer(answers[i % 4]), now=NOW)
        sms.render(prompts, outcome)
    per_turn_ms = (time.perf_counter() - began) / rounds * 1000
    assert per_turn_ms < 2.0, f"one turn took {per_turn_ms:.2f} ms"


events = st.lists(
    st.one_of(
        st.text(max_size=40).map(Event.answer),
        st.sampled_from("0123456789*#").map(lambda d: Event.answer(digits=d)),
        st.sampled_from(["yes", "no", "5k", "asap", "me", "not sure", "", "stop"]).map(Event.answer),
        st.just(Event.silence()),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=events, flow_name=st.sampled_from(["prequal", "roofing"]))
def test_fuzz_any_events_end_cleanly(
    prequal: Flow, roofing: Flow, turns: list[Event], flow_name: str
) -> None:
    flow = prequal if flow_name == "prequal" else roofing
    state, prompts, outcome = engine.start(flow, LEAD, "voice")
    for event in turns:
        if outcome is not None:
            break
        state, prompts, outcome = engine.step(flow, state, event, now=NOW)
        json.dumps(state)
        assert (outcome is None) == bool(prompts) and (outcome is None) != state["done"]
        if outcome is None:
            assert (
                prompts[-1].step == state["step"]
                and state["retries"] <= flow.steps[state["step"]].max_retries
            )
        else:
            assert outcome.id in {*flow.outcomes, "opt_out"} and outcome.say
