"""Dispatch on a real Valkey with real RQ workers: one call per attempt, whatever fails."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.jobs import dispatch
from bot.store.tables import Attempt, Event, Lead
from tests.conftest import API_KEY, drain, lead_body


def new_lead(client, **overrides) -> str:  # noqa: ANN001
    resp = client.post("/leads", json=lead_body(**overrides), headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def events(services, lead_id: str) -> list[str]:  # noqa: ANN001
    with services.sessions() as s:
        return [e.type for e in s.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.id))]


def lead(services, lead_id: str) -> Lead:  # noqa: ANN001
    with services.sessions() as s:
        return s.get(Lead, lead_id)


def test_call_is_placed_with_webhooks_amd_and_timeout(client, services, emulator):
    lead_id = new_lead(client)
    drain(services)
    calls = emulator.of("/Calls.json")
    assert len(calls) == 1
    form, multi = calls[0]["form"], calls[0]["multi"]
    assert form["To"] == "+15125550100" and form["From"] == services.settings.caller_id
    assert form["Url"].startswith("http://leadbot.test/twilio/voice/answer/")
    assert form["StatusCallback"].startswith("http://leadbot.test/twilio/status/call/")
    assert multi["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == "DetectMessageEnd" and form["Timeout"] == "25"
    assert form["AsyncAmd"] == "true" and form["AsyncAmdStatusCallback"].startswith("http://leadbot.test/twilio/voice/amd/")
    assert lead(services, lead_id).status == "contacting"
    assert events(services, lead_id) == ["received", "queued", "dialing"]


def test_job_run_twice_places_one_call(client, services, emulator):
    lead_id = new_lead(client)
    drain(services)
    assert dispatch.contact(lead_id) == "skipped"  # e.g. a duplicate delivery of the job
    assert len(emulator.of("/Calls.json")) == 1


def test_concurrent_jobs_place_one_call(client, services, emulator):
    lead_id = new_lead(client)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(dispatch.contact(lead_id))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(emulator.of("/Calls.json")) == 1
    assert sorted(results).count("skipped") == 3


@pytest.mark.parametrize("status,code", [(500, 20500), (503, 20503), (429, 20429)])
def test_transient_errors_are_retried_then_succeed(client, services, emulator, status, code):
    emulator.script("call", (status, {"code": code, "message": "try later", "status": status}))
    lead_id = new_lead(client)
    drain(services)
    assert len(emulator.of("/Calls.json")) == 2
    with services.sessions() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.lead_id == lead_id)).all()
    assert len(attempts) == 1 and attempts[0].status == "placed" and attempts[0].tries == 2
    assert events(services, lead_id) == ["received", "queued", "dial_retry", "dialing"]


@pytest.mark.parametrize("code,reason", [
    (21211, "invalid 'To' phone number (Twilio 400 error 21211: "),
    (21610, "recipient has unsubscribed (STOP) (Twilio 400 error 21610: "),
    (21215, "geographic permission missing (Twilio 400 error 21215: "),
    (21999, "Twilio 400 error 21999: "),  # a code we have no words for: Twilio's own
])
def test_permanent_errors_fail_the_lead_with_reason(client, services, emulator, code, reason):
    emulator.script("call", (400, {"code": code, "message": "nope", "status": 400}))
    lead_id = new_lead(client)
    drain(services)
    got = lead(services, lead_id)
    assert got.status == "failed" and reason in got.status_reason
    assert len(emulator.of("/Calls.json")) == 1  # never retried
    assert events(services, lead_id)[-2:] == ["dial_failed", "handoff_email_sent"]  # the managers are told


def test_unsubscribed_recipient_is_recorded_as_opt_out(client, services, emulator):
    from bot.store.tables import OptOut

    emulator.script("call", (400, {"code": 21610, "message": "unsubscribed", "status": 400}))
    new_lead(client)
    drain(services)
    with services.sessions() as s:
        assert s.get(OptOut, "+15125550100") is not None


def test_retries_exhausted_fail_the_lead(client, services, emulator):
    emulator.script("call", *[(500, {"code": 20500, "message": "down", "status": 500})] * 6)
    lead_id = new_lead(client)
    drain(services, rounds=12)
    got = lead(services, lead_id)
    assert got.status == "failed" and "gave up after 6 tries" in got.status_reason
    assert len(emulator.of("/Calls.json")) == 6


def test_twilio_unreachable_is_retried(client, services, emulator):
    lead_id = new_lead(client)
    emulator.stop()  # connection refused
    svc_client = services.twilio
    drain(services, rounds=1)
    assert lead(services, lead_id).status == "contacting"
    with services.sessions() as s:
        assert s.scalar(select(Attempt.status).where(Attempt.lead_id == lead_id)) == "retry"
    assert svc_client is services.twilio


def test_lost_response_adopts_the_call_instead_of_redialling(tmp_path, db_url, redis_url, emulator):
    """Twilio created the call but the response never came back: we must not dial again."""
    from app import create_app
    from bot.runtime import services as runtime
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, TWILIO_TIMEOUT_SECONDS=0.5))
    svc = app.extensions["leadbot"]
    runtime.use(svc)
    try:
        emulator.script("call", "slow:1.0")  # creates the call, answers after the client gave up
        lead_id = new_lead(app.test_client())
        drain(svc)
        assert len(emulator.of("/Calls.json")) == 1
        assert len(emulator.calls) == 1
        assert events(svc, lead_id) == ["received", "queued", "dial_retry", "dialing"]
        with svc.sessions() as s:
            dialing = s.scalars(select(Event).where(Event.lead_id == lead_id, Event.type == "dialing")).one()
        assert dialing.data["adopted"] is True
        with svc.sessions() as s:
            attempt = s.scalar(select(Attempt).where(Attempt.lead_id == lead_id))
        assert attempt.provider_sid == next(iter(emulator.calls))
    finally:
        runtime.use(None)
        svc.engine.dispose()


def test_outside_calling_hours_is_scheduled_not_called(tmp_path, db_url, redis_url, emulator):
    from rq.registry import ScheduledJobRegistry

    from app import create_app
    from bot.runtime import services as runtime
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS="08:00-21:00"))
    svc = app.extensions["leadbot"]
    runtime.use(svc)
    try:
        lead_id = new_lead(app.test_client())
        # 03:00 UTC is 21:00-22:00 in Austin: after hours.
        attempt = dispatch.claim(svc, lead_id, now=datetime(2026, 1, 15, 3, 0, tzinfo=UTC))
        assert attempt is None
        got = lead(svc, lead_id)
        assert got.status == "scheduled"
        assert emulator.of("/Calls.json") == []
        scheduled = ScheduledJobRegistry(queue=svc.queue).get_job_ids()
        assert len(scheduled) == 1
        with svc.sessions() as s:
            ev = s.scalars(select(Event).where(Event.lead_id == lead_id, Event.type == "scheduled")).one()
        # 08:00 in America/Chicago on Jan 15 is 14:00 UTC.
        assert ev.data["not_before"].startswith("2026-01-15T14:00")
    finally:
        runtime.use(None)
        svc.engine.dispose()


def test_lost_sms_response_adopts_the_message_instead_of_resending(tmp_path, db_url, redis_url, emulator):
    from app import create_app
    from bot.runtime import services as runtime
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, TWILIO_TIMEOUT_SECONDS=0.5))
    svc = app.extensions["leadbot"]
    runtime.use(svc)
    try:
        emulator.script("message", "slow:1.0")
        lead_id = new_lead(app.test_client(), channel="sms", service="solar")
        drain(svc)
        assert len(emulator.messages) == 1  # one text, not two
        with svc.sessions() as s:
            sent = s.scalars(select(Event).where(Event.lead_id == lead_id, Event.type == "sms_sent")).one()
        assert sent.data["adopted"] is True and sent.data["sid"] == emulator.messages[0]["sid"]
    finally:
        runtime.use(None)
        svc.engine.dispose()


def test_email_lead_gets_the_questions_by_email(client, services):
    from bot.store.handoff_tables import MailOutbox

    lead_id = new_lead(client, channel="email", consent=False, service="kitchen remodel")
    drain(services)
    with services.sessions() as s:
        mail = s.scalars(select(MailOutbox)).one()
        attempt = s.scalars(select(Attempt).where(Attempt.lead_id == lead_id)).one()
    assert mail.to_addrs == "ada@example.com" and "kitchen remodel" in mail.subject
    assert "budget" in mail.body.lower() and "Hi Ada" in mail.body
    assert attempt.status == "placed"
    assert events(services, lead_id) == ["received", "queued", "email_sent", "touch_planned"]


def test_smtp_down_is_retried_not_lost(tmp_path, db_url, redis_url, emulator):
    from app import create_app
    from bot.runtime import services as runtime
    from tests.conftest import make_settings
    from tests.procs import free_port

    app = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url,
                                   SMTP_URL=f"smtp://127.0.0.1:{free_port()}?timeout=1"))
    svc = app.extensions["leadbot"]
    runtime.use(svc)
    try:
        lead_id = new_lead(app.test_client(), channel="email", consent=False)
        drain(svc, rounds=1)
        assert lead(svc, lead_id).status == "contacting"
        with svc.sessions() as s:
            attempt = s.scalars(select(Attempt).where(Attempt.lead_id == lead_id)).one()
        assert attempt.status == "retry" and "mail" in attempt.error
    finally:
        runtime.use(None)
        svc.engine.dispose()


def test_a_lead_that_cannot_be_reached_is_emailed_to_the_managers_once(client, services, emulator):
    """An invalid number fails the lead; the managers hear of it by email, and a rerun sends nothing more."""
    from bot.store.handoff_tables import MailOutbox
    from handoff import alerts

    emulator.script("call", (400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}))
    lead_id = new_lead(client)
    drain(services)
    assert lead(services, lead_id).status == "failed"
    assert alerts.report_unreachable(services, lead_id) == "already sent"
    with services.sessions() as s:
        mails = s.scalars(select(MailOutbox).where(MailOutbox.lead_id == lead_id)).all()
    assert [m.kind for m in mails] == ["unreachable"]
    assert mails[0].to_addrs == "priya.natarajan@example.com, tom.becker@example.com"
    assert mails[0].subject.startswith("Unreachable lead: Ada Lovelace")
    assert "21211" in mails[0].body and f"/leads/{lead_id}" in mails[0].body


def test_an_unreachable_lead_email_redis_lost_is_sent_by_the_sweeper(client, services, emulator,
                                                                      movable_clock):
    """The lead fails, then Redis restarts without persistence before the managers' email job runs."""
    from datetime import timedelta

    from bot.store.handoff_tables import MailOutbox
    from handoff import alerts

    emulator.script("call", (400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}))
    lead_id = new_lead(client)
    services.queue.empty()  # the worker below is this test: the contact job runs in place
    assert dispatch.contact(lead_id) == "failed"
    services.redis.flushall()
    assert alerts.sweep_lost(services) == 0  # within the grace a job may be on its way
    movable_clock.set_now(datetime.now(UTC) + timedelta(minutes=2))
    assert alerts.sweep_lost(services) == 1
    assert alerts.sweep_lost(services) == 0  # its job is queued now
    drain(services)
    with services.sessions() as s:
        mails = s.scalars(select(MailOutbox).where(MailOutbox.lead_id == lead_id)).all()
    assert [m.kind for m in mails] == ["unreachable"]
    movable_clock.set_now(datetime.now(UTC) + timedelta(minutes=4))
    assert alerts.sweep_lost(services) == 0  # told: nothing more
