"""Answer parsers against a corpus of real-world phrasings; prints the accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.flows.answers import NOT_UNDERSTOOD, UNKNOWN, is_opt_out, parse, parse_for_step
from bot.flows.loader import require_flow
from bot.flows.model import DEFAULT_OPT_OUT_DIGIT

from .conftest import NOW, SHIPPED

CORPUS = yaml.safe_load((Path(__file__).parent / "answer_corpus.yaml").read_text(encoding="utf-8"))
THRESHOLD = 0.95
FLOWS: dict[str, Any] = {}


def understood(item: dict[str, Any]) -> Any:
    """What the parsers make of one corpus item."""
    text, digits = item.get("text", ""), str(item.get("digits", ""))
    if item["type"] == "opt_out":
        return is_opt_out(text, digits, DEFAULT_OPT_OUT_DIGIT)
    options = {"now": NOW, "current_phone": "+15005550006"}
    if "step" in item:
        flow_id, step_id = item["step"].split(".")
        if flow_id not in FLOWS:
            FLOWS[flow_id] = require_flow(SHIPPED / f"{flow_id}.yaml")
        return parse_for_step(FLOWS[flow_id].steps[step_id], text, digits, **options)
    return parse(item["type"], text, digits, **options)


def matches(item: dict[str, Any], got: Any) -> bool:
    """Compare with the expectation; mappings compare only the keys the corpus lists."""
    expect = item["expect"]
    if expect == "no_match":
        return got is NOT_UNDERSTOOD
    if expect == "unknown":
        return got == UNKNOWN
    if isinstance(expect, dict):
        return isinstance(got, dict) and all(got.get(k) == v for k, v in expect.items())
    return got is not NOT_UNDERSTOOD and got == expect


def label(item: dict[str, Any]) -> str:
    digits = f" digits={item['digits']}" if "digits" in item else ""
    return f"{item['type']}:{item.get('text', '')!r}{digits}"


def test_corpus_is_big_and_varied() -> None:
    assert len(CORPUS) >= 150
    kinds = {item["type"] for item in CORPUS}
    assert kinds >= {"yes_no", "choice", "money", "timeframe", "number", "email", "phone", "opt_out"}


def test_corpus_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    misses = [
        (label(item), item["expect"], understood(item))
        for item in CORPUS
        if not matches(item, understood(item))
    ]
    accuracy = 1 - len(misses) / len(CORPUS)
    with capsys.disabled():
        print(f"\nanswer corpus accuracy: {accuracy:.1%} ({len(CORPUS) - len(misses)}/{len(CORPUS)})")
        for what, expect, got in misses:
            print(f"  miss {what}: expected {expect!r}, got {got!r}")
    assert accuracy >= THRESHOLD


@pytest.mark.parametrize("item", [i for i in CORPUS if i.get("must")], ids=label)
def test_must_pass(item: dict[str, Any]) -> None:
    got = understood(item)
    assert matches(item, got), f"expected {item['expect']!r}, got {got!r}"


def test_unknown_is_distinct_from_not_understood() -> None:
    assert parse("money", "I don't know yet") == UNKNOWN
    assert parse("money", "banana") is NOT_UNDERSTOOD
    assert not NOT_UNDERSTOOD and repr(NOT_UNDERSTOOD) == "NOT_UNDERSTOOD"


def test_timeframes_depend_only_on_the_injected_now() -> None:
    from datetime import datetime

    later = datetime(2025, 11, 20, 9, 0)
    assert parse("timeframe", "next month", now=later)["start"] == "2025-12-01"
    assert parse("timeframe", "in the spring", now=later)["start"] == "2026-03-01"
    assert parse("timeframe", "in the winter", now=datetime(2025, 1, 15))["kind"] == "window"
