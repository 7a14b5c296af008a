"""Loader and validator: exact file:line messages, every error at once, never a crash on junk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.flows.errors import FlowError
from bot.flows.loader import load_flow, load_flow_bytes, load_flow_text
from bot.flows.model import AnswerType
from bot.flows.routing import NOT_FLOWS

from .conftest import SHIPPED

GOOD = """\
id: tiny
title: Tiny
steps:
  need:
    prompt: "Hi {{ lead.first_name }}, do you need help?"
    type: yes_no
    on:
      yes: budget
      no: outcome:bye
  budget:
    prompt: What budget?
    type: money
    on:
      next: decide
outcomes:
  hot:
    when: {answer: budget, gte: 1000}
    say: Connecting you now.
    action: warm_transfer
  bye:
    say: Goodbye.
    action: close
"""


def errors_of(text: str, path: str = "ivr_flows/x.yaml") -> list[str]:
    flow, errors = load_flow_text(text, path)
    assert flow is None, "expected the flow to be rejected"
    return [str(e) for e in errors]


def test_good_flow_loads_with_version_and_yes_no_keys_as_words() -> None:
    flow, errors = load_flow_text(GOOD, "tiny.yaml")
    assert errors == []
    assert flow is not None
    assert flow.steps["need"].on == {"yes": "budget", "no": "outcome:bye"}
    assert flow.steps["budget"].type is AnswerType.MONEY
    assert flow.first_step == "need"
    assert len(flow.version) == 64 and flow.path == "tiny.yaml"


def test_flow_error_format() -> None:
    assert str(FlowError("ivr_flows/roofing.yaml", 23, "steps.budget.on.no", "unknown step 'bugdet'")) == (
        "ivr_flows/roofing.yaml:23: steps.budget.on.no: unknown step 'bugdet'"
    )
    assert str(FlowError("a.yaml", None, "", "boom")) == "a.yaml: boom"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      no: outcome:bye",
            "      no: bugdet",
            "ivr_flows/x.yaml:9: steps.need.on.no: unknown step 'bugdet'",
        ),
        (
            "      no: outcome:bye",
            "      no: outcome:byee",
            "ivr_flows/x.yaml:9: steps.need.on.no: unknown outcome 'byee'",
        ),
        (
            "    type: money",
            "    type: cash",
            "ivr_flows/x.yaml:12: steps.budget.type: unknown answer type 'cash' "
            "(one of: yes_no, choice, number, money, timeframe, text, email, phone)",
        ),
        (
            "lead.first_name",
            "lead.nmae",
            "ivr_flows/x.yaml:5: steps.need.prompt: unknown variable 'lead.nmae'",
        ),
        (
            "    prompt: What budget?",
            '    prompt: "{{ answers.unknown_step }}"',
            "ivr_flows/x.yaml:11: steps.budget.prompt: unknown variable 'answers.unknown_step'",
        ),
        (
            "    prompt: What budget?",
            '    prompt: "{{ budget }"',
            "ivr_flows/x.yaml:11: steps.budget.prompt: template error: unexpected '}'",
        ),
        (
            "    action: warm_transfer",
            "    action: transfer",
            "ivr_flows/x.yaml:19: outcomes.hot.action: unknown action 'transfer' "
            "(one of: warm_transfer, handoff_sms, nurture:<sequence>, close, opt_out)",
        ),
        (
            "{answer: budget, gte: 1000}",
            "{answer: budgt, gte: 1000}",
            "ivr_flows/x.yaml:17: outcomes.hot.when.answer: unknown step 'budgt'",
        ),
        (
            "{answer: budget, gte: 1000}",
            "{answer: budget, bigger: 1000}",
            "ivr_flows/x.yaml:17: outcomes.hot.when.bigger: unknown operator 'bigger' "
            "(known: is, is_not, in, "
            "gte, gt, lte, lt, within_days, beyond_days, contains, known)",
        ),
        (
            "{answer: budget, gte: 1000}",
            "{answer: need, within_days: 30}",
            "ivr_flows/x.yaml:17: outcomes.hot.when.within_days: "
            "cannot apply to step 'need' (yes_no answers)",
        ),
        (
            "{answer: budget, gte: 1000}",
            "{answer: need, is: maybe}",
            "ivr_flows/x.yaml:17: outcomes.hot.when.is: "
            "expects yes, no or unknown for a yes_no step, not 'maybe'",
        ),
        (
            "    prompt: What budget?",
            "    promt: What budget?",
            "ivr_flows/x.yaml:11: steps.budget.promt: unknown key 'promt' (did you mean 'prompt'?)",
        ),
        (
            "      next: decide",
            "      yes: decide",
            "ivr_flows/x.yaml:14: steps.budget.on.yes: unknown key 'yes' (allowed: unknown, default, next)",
        ),
        (
            "      no: outcome:bye\n",
            "",
            "ivr_flows/x.yaml:7: steps.need.on: no target for 'no'; add 'no:' or 'default:'",
        ),
    ],
)
def test_single_error_exact_message(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert expected in errors_of(GOOD.replace(old, new, 1))


def test_graph_errors_name_the_step_and_outcome() -> None:
    text = (
        GOOD.replace("      no: outcome:bye", "      no: budget")
        + """\
  never:
    when: {answer: need, is: yes}
    say: x
    action: close
"""
    )
    text = text.replace(
        "  budget:\n", "  lonely:\n    prompt: hi\n    type: text\n    on: {next: need}\n  budget:\n"
    )
    assert errors_of(text) == [
        "ivr_flows/x.yaml:10: steps.lonely: step is never reached: no 'on' or 'on_fail' leads here",
        "ivr_flows/x.yaml:27: outcomes.never: outcome can never be reached: 'decide' stops at "
        "'bye' (the first outcome without 'when') and no step goes to 'outcome:never'; "
        "move 'bye' below it or "
        "give 'bye' a 'when'",
    ]


def test_loop_without_exit_and_decide_without_fallback() -> None:
    text = """\
id: loop
steps:
  a:
    prompt: A?
    type: yes_no
    on: {yes: b, no: b}
  b:
    prompt: B?
    type: yes_no
    on: {default: a}
outcomes:
  only:
    when: {answer: a, is: yes}
    say: bye
    action: close
"""
    assert errors_of(text, "loop.yaml") == [
        "loop.yaml:3: steps.a: step cannot reach any outcome: every answer loops back to a step",
        "loop.yaml:7: steps.b: step cannot reach any outcome: every answer loops back to a step",
        "loop.yaml:12: outcomes: a step goes to 'decide' but no outcome is a fallback (one without 'when'); "
        "add one so every lead gets an outcome",
    ]


def test_keypad_digit_collisions() -> None:
    text = """\
id: digits
steps:
  pick:
    prompt: Pick one
    type: choice
    choices:
      - {id: a, digit: 1}
      - {id: b, digit: 1}
      - {id: c, digit: 9}
    on: {default: decide}
outcomes:
  done:
    say: bye
    action: close
"""
    assert errors_of(text, "d.yaml") == [
        "d.yaml:8: steps.pick.choices[1].digit: keypad digit 1 used twice (also by 'a')",
        "d.yaml:9: steps.pick.choices[2].digit: keypad digit 9 is the opt-out digit",
    ]
    moved = text.replace("id: digits", "id: digits\nopt_out: {digit: 0}").replace(
        "{id: b, digit: 1}", "{id: b, digit: 2}"
    )
    flow, errors = load_flow_text(moved, "d.yaml")
    assert errors == [] and flow is not None and flow.opt_out.digit == "0"


def test_every_error_is_reported_at_once() -> None:
    text = """\
id: Bad Id
languages: [es]
greeting: {en: "Hi {{ lead.nmae }}"}
steps:
  need:
    prompt: "{% if %}"
    type: yesno
    on: {yes: nowhere}
    max_retries: 9
outcomes:
  opt_out:
    say: x
    action: nurture
"""
    got = errors_of(text, "b.yaml")
    assert got == [
        "b.yaml:1: id: flow id 'Bad Id' must be lowercase letters, digits and _",
        "b.yaml:3: greeting: missing the 'es' text",
        "b.yaml:3: greeting.en: unknown variable 'lead.nmae'",
        "b.yaml:6: steps.need.prompt: template error: Expected an expression, got 'end of statement block'",
        "b.yaml:7: steps.need.type: unknown answer type 'yesno' "
        "(one of: yes_no, choice, number, money, timeframe, text, email, phone)",
        "b.yaml:8: steps.need.on: no target for any answer; add 'next:'",
        "b.yaml:8: steps.need.on.yes: unknown key 'yes' (allowed: unknown, default, next)",
        "b.yaml:9: steps.need.max_retries: expected a whole number from 0 to 5, got 9",
        "b.yaml:11: outcomes.opt_out: outcome id 'opt_out' is reserved (set the goodbye under opt_out.say)",
        "b.yaml:13: outcomes.opt_out.action: unknown action 'nurture' "
        "(one of: warm_transfer, handoff_sms, nurture:<sequence>, close, opt_out)",
    ]


def test_duplicate_keys_and_block_template_lines() -> None:
    text = GOOD.replace(
        "  budget:\n    prompt: What budget?",
        "  budget:\n    prompt: |\n      What budget,\n      {{ lead.nmae }}?",
    )
    text += "  bye:\n    say: again\n    action: close\n"
    assert errors_of(text) == [
        "ivr_flows/x.yaml:13: steps.budget.prompt: unknown variable 'lead.nmae'",
        "ivr_flows/x.yaml:25: outcomes: duplicate key 'bye'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- just\n- a list\n",
            "x.yaml:1: a flow file must be a mapping (id, title, steps, outcomes), not a list",
        ),
        (
            "id: [unclosed\n",
            "x.yaml:2: invalid YAML: while parsing a flow sequence "
            "expected ',' or ']', but got '<stream end>'",
        ),
        ("", "x.yaml:1: a flow file must be a mapping (id, title, steps, outcomes), not nothing"),
        (
            "a: !!python/object:os.system {}\n",
            "x.yaml:1: invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
        ),
    ],
)
def test_malformed_yaml_is_an_error_not_an_exception(text: str, expected: str) -> None:
    assert errors_of(text, "x.yaml")[0] == expected


def test_binary_and_unreadable_files(tmp_path: Path) -> None:
    flow, errors = load_flow_bytes(b"\xff\xfe\x00junk", "bin.yaml")
    assert flow is None and [str(e) for e in errors] == [
        "bin.yaml: not UTF-8 text (byte 0): save the file as UTF-8"
    ]
    flow, errors = load_flow(tmp_path / "missing.yaml")
    assert flow is None and "cannot read file" in str(errors[0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzz_arbitrary_text_never_raises(text: str) -> None:
    flow, errors = load_flow_text(text, "fuzz.yaml")
    assert (flow is None) == bool(errors)
    assert all(isinstance(e, FlowError) and str(e).startswith("fuzz.yaml") for e in errors)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_raise(data: bytes) -> None:
    flow, errors = load_flow_bytes(data, "fuzz.yaml")
    assert flow is None and errors


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(["decide", "outcome:bye", "yes_no", "{{ lead.name }}", "{% if"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "steps",
                    "outcomes",
                    "prompt",
                    "type",
                    "on",
                    "when",
                    "say",
                    "action",
                    "yes",
                    "no",
                    "all",
                    "answer",
                    "choices",
                    "digit",
                    "greeting",
                    "en",
                    "es",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_values)
def test_fuzz_structured_flows_never_raise(value: object) -> None:
    import yaml

    flow, errors = load_flow_text(yaml.safe_dump(value), "fuzz.yaml")
    assert (flow is None) == bool(errors)


@pytest.mark.parametrize("path", sorted(p for p in SHIPPED.glob("*.yaml") if p.name not in NOT_FLOWS))
def test_every_shipped_flow_is_valid(path: Path) -> None:
    flow, errors = load_flow(path)
    assert [str(e) for e in errors] == []
    assert flow is not None and set(flow.languages) == {"en", "es"}


def test_the_staff_readme_example_is_a_valid_flow() -> None:
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    flow, errors = load_flow_text(example, "README.md")
    assert [str(e) for e in errors] == []
    assert flow is not None and list(flow.outcomes) == ["qualified_ready", "not_a_fit"]


def test_alias_bomb_is_rejected_quickly() -> None:
    """YAML aliases can describe 9**9 items in a few lines; validation must not walk or print them all."""
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        text += f"l{i}: &l{i} [{', '.join(['*l' + str(i - 1) if i > 1 else '*a'] * 9)}]\n"
    text += "id: *l8\ngreeting: *l8\nsteps:\n  s:\n    prompt: *l8\n    type: *l8\n    hints: *l8\n"
    text += "    on: {default: *l8}\noutcomes:\n  o:\n    when: {answer: s, in: *l8}\n"
    text += "    say: *l8\n    action: *l8\n"
    began = time.perf_counter()
    flow, errors = load_flow_text(text, "bomb.yaml")
    assert flow is None and errors and time.perf_counter() - began < 2
    assert max(len(str(e)) for e in errors) < 400


def test_choices_need_all_digits_or_none() -> None:
    text = """\
id: mixed
steps:
  pick:
    prompt: Pick one
    type: choice
    choices:
      - {id: a, digit: 1}
      - {id: b}
    on: {default: decide}
outcomes:
  done: {say: bye, action: close}
"""
    assert errors_of(text, "m.yaml") == [
        "m.yaml:6: steps.pick.choices: give every option a keypad digit, or none "
        "(then they are numbered 1, 2, 3...)"
    ]
    flow, errors = load_flow_text(text.replace(", digit: 1}", "}"), "m.yaml")
    assert errors == [] and flow is not None
    from bot.flows.answers import parse_for_step

    assert parse_for_step(flow.steps["pick"], digits="2") == "b"
