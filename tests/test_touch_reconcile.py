"""A retry whose Twilio request timed out: reconciled against Twilio's call list, never placed twice nor
lost. The emulator creates the call but answers after the client gave up (TWILIO_TIMEOUT_SECONDS)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.store.tables import Attempt
from bot.store.touch_tables import Touch
from tests.conftest import make_settings
from tests.lifecycle_kit import events, leg_for, moved_clock, status, work
from tests.test_lifecycle import post_lead, travel_and_run

SLOW = "slow:1.0"  # the emulator creates the call, then answers one second late


@pytest.fixture
def settings(tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    return make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS="08:00-21:00",
                         TWILIO_TIMEOUT_SECONDS=0.5)

@pytest.fixture
def tm(tmp_path, monkeypatch, db_url, services):  # noqa: ANN001, ANN201
    yield from moved_clock(tmp_path, monkeypatch, db_url, services)



def retry_times_out(client, auth, services, emulator, tm) -> str:  # noqa: ANN001
    """A lead whose first call went unanswered and whose retry's create request timed out."""
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    emulator.script("call", SLOW)
    travel_and_run(tm, services, tm.next_due(lead_id))
    assert len(emulator.of("/Calls.json")) == 2 and len(emulator.calls) == 2  # Twilio has the retry
    with services.sessions() as s:
        assert s.scalar(select(Attempt.error).where(Attempt.number == 2)) == "ambiguous"
    return lead_id


def test_a_timed_out_retry_is_adopted_not_placed_twice(client, auth, services, emulator, tm):
    lead_id = retry_times_out(client, auth, services, emulator, tm)
    tm.release()  # RQ's retry of the touch job comes due
    work(services)
    assert len(emulator.of("/Calls.json")) == 2  # no third create
    retry_sid = list(emulator.calls)[1]
    [adopted] = [d for t, d in events(services, lead_id, "dialing") if d.get("adopted")]
    assert adopted["sid"] == retry_sid and adopted["touch"] == "retry"
    with services.sessions() as s:
        touch = s.scalar(select(Touch).where(Touch.lead_id == lead_id, Touch.kind == "retry"))
        attempt = s.get_one(Attempt, touch.attempt_id)
    assert touch.status == "sent" and (attempt.status, attempt.provider_sid) == ("placed", retry_sid)


def test_a_timed_out_retry_twilio_never_created_is_sent_again(client, auth, services, emulator, tm):
    lead_id = retry_times_out(client, auth, services, emulator, tm)
    emulator.calls.pop(list(emulator.calls)[1])  # as if the request died before Twilio made the call
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 3 and len(emulator.calls) == 2  # placed again, once
    assert not [d for t, d in events(services, lead_id, "dialing") if d.get("adopted")]
    with services.sessions() as s:
        touch = s.scalar(select(Touch).where(Touch.lead_id == lead_id, Touch.kind == "retry"))
    assert touch.status == "sent"


def test_a_timed_out_text_is_adopted_not_sent_twice(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    travel_and_run(tm, services, tm.next_due(lead_id))  # the +2 min call
    status(*leg_for(client, services, emulator), "no-answer")
    emulator.script("message", SLOW)
    travel_and_run(tm, services, tm.next_due(lead_id))  # the +3 min text: Twilio has it, we timed out
    assert len(emulator.messages) == 1
    tm.release()
    work(services)
    assert len(emulator.of("/Messages.json")) == 1 and len(emulator.messages) == 1
    [sent] = [d for _, d in events(services, lead_id, "sms_sent")]
    assert sent["adopted"] is True and sent["sid"] == emulator.messages[0]["sid"] and sent["touch"] == "text"
