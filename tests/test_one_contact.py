"""A lead waiting for a call gets exactly one.

- Waiting for its contact time ('scheduled' at night, 'queued' after a new submission) with a job
  Redis lost: the sweeper sends it once it is well past due, and only then.
- Texting CALL while a call is on its way, or twice: still one call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


from bot.jobs.sweeper import DUE_GRACE_S, sweep_due, sweep_once_locked
from tests.conftest import API_KEY, PUBLIC, drain, lead_body
from tests.lifecycle_kit import events, lead_row, leg_for, sms_in, status
from tests.test_calling_rules import table_app  # noqa: F401 - the app with the shipped calling rules
from bot.twilio.signature import sign

NEW_YORK = ZoneInfo("America/New_York")
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PHONE = "+12125550100"
EIGHT = datetime(2026, 12, 3, 8, 0, tzinfo=NEW_YORK)  # a Thursday


def post(app) -> str:  # noqa: ANN001
    resp = app.test_client().post("/leads", json=lead_body(phone=PHONE), headers=AUTH)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def text_in(app, body: str) -> str:  # noqa: ANN001
    """The lead texts our number; returns our reply's TwiML."""
    token = app.extensions["leadbot"].webhook_token
    signed = lambda path, params: {"X-Twilio-Signature": sign(token, PUBLIC + path, params)}  # noqa: E731
    return sms_in(app.test_client(), app.extensions["leadbot"], signed, body, phone=PHONE)


def deferred_lead(app, movable_clock) -> str:  # noqa: ANN001
    """A lead sent at 22:30 New York time: deferred to 08:00, its job in RQ's schedule."""
    movable_clock.set_now(datetime(2026, 12, 2, 22, 30, tzinfo=NEW_YORK))
    lead_id = post(app)
    drain(app.extensions["leadbot"], rounds=1)
    lead = lead_row(app.extensions["leadbot"], lead_id)
    assert lead.status == "scheduled"
    assert lead.contact_due_at == EIGHT.astimezone(UTC).replace(tzinfo=None)
    return lead_id


def test_a_night_lead_whose_job_redis_lost_is_called_once_it_is_past_due(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    lead_id = deferred_lead(table_app, movable_clock)
    svc.redis.flushall()  # Redis restarted without persistence in the night: the 08:00 job is gone
    movable_clock.set_now(EIGHT - timedelta(minutes=1))
    assert sweep_due(svc) == 0  # not due yet
    movable_clock.set_now(EIGHT + timedelta(seconds=DUE_GRACE_S - 5))
    assert sweep_due(svc) == 0  # RQ's scheduler may still be moving it
    movable_clock.set_now(EIGHT + timedelta(minutes=2))
    assert sweep_once_locked(svc, 5) == 1  # the worker's sweep pass includes it
    assert [d for _, d in events(svc, lead_id, "requeued")] == [{"by": "sweeper", "was": "scheduled"}]
    assert sweep_due(svc) == 0  # its job is in the queue now: no second one
    drain(svc)
    assert [c["form"]["To"] for c in emulator.of("/Calls.json")] == [PHONE]
    lead = lead_row(svc, lead_id)
    assert lead.status == "contacting" and lead.contact_due_at is None


def test_a_night_lead_whose_job_is_there_is_left_to_it(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    lead_id = deferred_lead(table_app, movable_clock)
    movable_clock.set_now(EIGHT + timedelta(minutes=5))  # the job is still in RQ's schedule
    assert sweep_due(svc) == 0
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1
    assert events(svc, lead_id, "requeued") == []


def test_a_new_submission_that_met_redis_down_is_called_when_it_is_back(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    client = table_app.test_client()
    movable_clock.set_now(datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK))
    lead_id = post(table_app)
    drain(svc)
    status(*leg_for(client, svc, emulator), "no-answer")
    svc.redis.flushall()  # the retry cadence's jobs, and the contact job the new submission is about to get
    real_enqueue = svc.queue.connection.pipeline

    def redis_down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        import redis

        raise redis.ConnectionError("Redis is down")

    svc.queue.connection.pipeline = redis_down
    try:
        resp = client.post("/leads", json=lead_body(phone=PHONE), headers=AUTH)
    finally:
        svc.queue.connection.pipeline = real_enqueue
    assert resp.status_code == 202 and resp.get_json()["status"] == "queued", resp.get_json()
    assert len(emulator.of("/Calls.json")) == 1
    movable_clock.set_now(datetime(2026, 12, 3, 11, 2, tzinfo=NEW_YORK))
    assert sweep_due(svc) == 1
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 2


def test_a_call_me_text_before_the_morning_call_is_one_call(table_app, emulator, movable_clock):
    """A night lead texts 'call me' at 07:00: the callback is planned for 08:00, when the deferred
    contact job is due too. One call, and the sweeper adds none."""
    svc = table_app.extensions["leadbot"]
    lead_id = deferred_lead(table_app, movable_clock)
    movable_clock.set_now(EIGHT - timedelta(hours=1))
    reply = text_in(table_app, "call me")
    assert "8:00 AM" in reply, reply
    assert lead_row(svc, lead_id).status == "queued"
    movable_clock.set_now(EIGHT + timedelta(minutes=5))
    assert sweep_due(svc) == 0
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1


def test_call_sent_twice_before_the_morning_is_one_call(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    deferred_lead(table_app, movable_clock)
    movable_clock.set_now(EIGHT - timedelta(hours=1))
    assert "8:00 AM" in text_in(table_app, "CALL")
    movable_clock.set_now(EIGHT - timedelta(minutes=50))
    assert "8:00 AM" in text_in(table_app, "call me please")
    movable_clock.set_now(EIGHT + timedelta(minutes=1))
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1


def test_call_me_while_the_first_call_rings_is_that_call(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    movable_clock.set_now(datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK))
    lead_id = post(table_app)
    drain(svc)
    assert lead_row(svc, lead_id).status == "contacting"
    assert "Calling you now!" in text_in(table_app, "call me")
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1
    assert [d["was"] for _, d in events(svc, lead_id, "callback_requested")] == ["contacting"]


def test_the_form_sent_twice_at_night_is_one_call_in_the_morning(table_app, emulator, movable_clock):
    """Past the dedupe window the second request is a lead of its own; both wait for 08:00."""
    svc = table_app.extensions["leadbot"]
    first = deferred_lead(table_app, movable_clock)
    movable_clock.set_now(datetime(2026, 12, 2, 22, 50, tzinfo=NEW_YORK))
    second = post(table_app)
    assert second != first
    drain(svc, rounds=1)
    assert lead_row(svc, second).status == "scheduled"
    movable_clock.set_now(EIGHT + timedelta(minutes=1))
    drain(svc)
    [call] = emulator.of("/Calls.json")
    assert lead_row(svc, second).status == "contacting"
    older = lead_row(svc, first)
    assert older.status == "disqualified" and older.status_reason.startswith("superseded by a newer request")
    assert [d for _, d in events(svc, first, "superseded")] == [{"by": second}]
    assert sweep_due(svc) == 0
