"""Matching: filters, scores, round-robin among ties, and the next-shift fallback."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot.store.handoff_tables import Handoff, HandoffStatus
from bot.store.tables import utcnow
from handoff.matching import DEFAULT_RR_KEY, NoRepError, match_rep, open_handoff_counts
from handoff.territory import lead_territories
from tests.handoff.conftest import Db
from tests.handoff.factories import TUESDAY_10_CHICAGO, WEEKDAYS_9_TO_5, rep, roster


@dataclass
class FakeLead:
    """Only what matching reads."""

    phone: str = "+13125550100"  # Chicago, IL
    service: str | None = "roofing"
    language: str = "en"


def test_lead_territories_from_phonenumbers() -> None:
    assert lead_territories("+15125550100") == {"+1", "512", "TX"}
    assert lead_territories("+14155550123") == {"+1", "415", "CA"}
    assert lead_territories("+16135550100") == {"+1", "613", "ON"}
    assert lead_territories("+447911123456") == {"+44"}
    assert lead_territories("garbage") == frozenset()


def test_filters_service_active_shift_and_capacity(redis_client: redis.Redis) -> None:
    reps = [
        rep("Ann Solar", "+13125550001", services=("solar",)),
        rep("Bob Inactive", "+13125550002", active=False),
        rep("Cid Asleep", "+13125550003", hours={"timezone": "Asia/Tokyo", "mon-fri": "09:00-17:00"}),
        rep("Dee Full", "+13125550004", capacity=2),
        rep("Eve Ready", "+13125550005", hours=WEEKDAYS_9_TO_5, capacity=2),
    ]
    m = match_rep(roster(*reps), FakeLead(), redis_client, now=TUESDAY_10_CHICAGO,
                  open_counts={"+13125550004": 2, "+13125550005": 1})
    assert m.rep.name == "Eve Ready"
    assert m.immediate and m.fallbacks == ()
    filters = {name: entry["filters"] for name, entry in m.why["reps"].items()}
    assert filters["Ann Solar"]["service"] is False
    assert filters["Bob Inactive"]["active"] is False
    assert filters["Cid Asleep"]["on_shift"] is False  # 00:00 Wednesday in Tokyo
    assert filters["Dee Full"]["capacity"] is False
    assert m.why["reps"]["Eve Ready"]["passed"] is True
    assert m.why["rule"] == "top_score"


def test_service_match_ignores_case(redis_client: redis.Redis) -> None:
    m = match_rep(roster(rep("Ann", "+13125550001", services=("Roofing",))), FakeLead(service="ROOFING"),
                  redis_client, now=TUESDAY_10_CHICAGO)
    assert m.rep.name == "Ann"


def test_territory_beats_language_beats_nothing(redis_client: redis.Redis) -> None:
    reps = [
        rep("Plain", "+13125550001"),
        rep("Spanish", "+13125550002", languages=("en", "es")),
        rep("Texan", "+13125550003", territories=("TX",)),
    ]
    lead = FakeLead(phone="+15125550100", language="es")
    m = match_rep(roster(*reps), lead, redis_client, now=TUESDAY_10_CHICAGO)
    assert m.rep.name == "Texan"
    assert [r.name for r in m.fallbacks] == ["Spanish", "Plain"]
    assert m.why["reps"]["Texan"]["score"]["territory"] == 4
    assert m.why["reps"]["Spanish"]["score"]["language"] == 2
    assert m.why["reps"]["Plain"]["score"]["total"] == 0


def test_area_code_territory(redis_client: redis.Redis) -> None:
    reps = [rep("Austin", "+13125550001", territories=("512",)),
            rep("Dallas", "+13125550002", territories=("214",))]
    m = match_rep(roster(*reps), FakeLead(phone="+15125550100"), redis_client, now=TUESDAY_10_CHICAGO)
    assert m.rep.name == "Austin"


def test_speed_is_bucketed_fast_ok_slow(redis_client: redis.Redis) -> None:
    reps = [rep("Slow", "+13125550001"), rep("Fast", "+13125550002"), rep("Okay", "+13125550003")]
    speeds = {"+13125550001": 900.0, "+13125550002": 30.0, "+13125550003": 200.0}
    m = match_rep(roster(*reps), FakeLead(), redis_client, now=TUESDAY_10_CHICAGO, ack_seconds=speeds)
    assert [m.rep.name, *(r.name for r in m.fallbacks)] == ["Fast", "Okay", "Slow"]
    assert m.why["reps"]["Slow"]["score"]["speed"] == -1


def test_priority_adds_points(redis_client: redis.Redis) -> None:
    reps = [rep("Texan", "+13125550001", territories=("TX",)), rep("Boss", "+13125550002", priority=5)]
    m = match_rep(roster(*reps), FakeLead(phone="+15125550100"), redis_client, now=TUESDAY_10_CHICAGO)
    assert m.rep.name == "Boss"


def test_ties_rotate_and_fallbacks_follow_the_rotation(redis_client: redis.Redis) -> None:
    reps = [rep(n, f"+1312555000{i}") for i, n in enumerate(["Ann", "Bob", "Cid"], start=1)]
    picks = [match_rep(roster(*reps), FakeLead(), redis_client, now=TUESDAY_10_CHICAGO) for _ in range(6)]
    assert [p.rep.name for p in picks] == ["Ann", "Bob", "Cid", "Ann", "Bob", "Cid"]
    assert [r.name for r in picks[0].fallbacks] == ["Bob", "Cid"]
    assert [p.rotation_seq for p in picks] == [1, 2, 3, 4, 5, 6]
    assert picks[0].why["rule"] == "round_robin" and picks[0].why["tied"][0] == "Ann"
    assert redis_client.hget(DEFAULT_RR_KEY, "__seq") == b"6"


def test_weights_are_honoured(redis_client: redis.Redis) -> None:
    reps = [rep("Heavy", "+13125550001", weight=3), rep("Light", "+13125550002", weight=1)]
    names = [match_rep(roster(*reps), FakeLead(), redis_client, now=TUESDAY_10_CHICAGO).rep.name
             for _ in range(400)]
    assert Counter(names) == {"Heavy": 300, "Light": 100}
    # Smooth: the light rep's turns are spread out, not bunched.
    assert "Light, Light" not in ", ".join(names)


def test_nobody_on_shift_falls_back_to_the_next_shift(redis_client: redis.Redis) -> None:
    reps = [
        rep("Early", "+13125550001", hours={"timezone": "America/Chicago", "mon-fri": "09:00-17:00"}),
        rep("Late", "+13125550002", hours={"timezone": "America/Los_Angeles", "mon-fri": "09:00-17:00"}),
        rep("Solar", "+13125550003", services=("solar",)),
    ]
    tuesday_night = datetime(2024, 6, 5, 3, 0)  # Tue 22:00 CDT, 20:00 PDT
    m = match_rep(roster(*reps), FakeLead(), redis_client, now=tuesday_night)
    assert m.rep.name == "Early"
    assert not m.immediate
    assert m.available_at == datetime(2024, 6, 5, 14, 0, tzinfo=UTC)  # Wed 09:00 CDT
    assert [r.name for r in m.fallbacks] == ["Late"]
    assert m.why["rule"] == "next_shift:top_score"


def test_no_rep_for_the_service_raises(redis_client: redis.Redis) -> None:
    reps = [rep("Ann", "+13125550001", services=("solar",)), rep("Bob", "+13125550002", active=False)]
    with pytest.raises(NoRepError) as info:
        match_rep(roster(*reps), FakeLead(), redis_client, now=TUESDAY_10_CHICAGO)
    assert info.value.service == "roofing"
    assert info.value.why["reps"]["Bob"]["filters"]["active"] is False


def test_open_handoff_counts_from_the_table(db: Db) -> None:
    lead = db.lead()
    phone_a, phone_b = f"+1999{lead.id[:7]}", f"+1998{lead.id[:7]}"
    now = utcnow()
    db.handoffs(
        Handoff(lead_id=lead.id, rep_name="A", rep_phone=phone_a, status=HandoffStatus.OPEN.value),
        Handoff(lead_id=lead.id, rep_name="A", rep_phone=phone_a, status=HandoffStatus.OPEN.value),
        Handoff(lead_id=lead.id, rep_name="A", rep_phone=phone_a, status=HandoffStatus.ACKED.value,
                acked_at=now),
        Handoff(lead_id=lead.id, rep_name="B", rep_phone=phone_b, status=HandoffStatus.MISSED.value,
                due_at=now - timedelta(minutes=1)),
    )
    with db.factory() as session:
        counts = open_handoff_counts(session)
    assert counts.get(phone_a) == 2
    assert phone_b not in counts


def test_rotation_works_with_a_decoding_client(handoff_valkey, redis_client: redis.Redis) -> None:  # noqa: ANN001
    decoding = redis.Redis.from_url(handoff_valkey.connection_url, decode_responses=True)
    reps = [rep("Ann", "+13125550001"), rep("Bob", "+13125550002")]
    names = [match_rep(roster(*reps), FakeLead(), decoding, now=TUESDAY_10_CHICAGO, rr_key="rr:test").rep.name
             for _ in range(4)]
    decoding.close()
    assert names == ["Ann", "Bob", "Ann", "Bob"]
    assert redis_client.hgetall("rr:test") == {b"+13125550001": b"0", b"+13125550002": b"0", b"__seq": b"4"}
