"""A touch never stops silently: a send that fails unexpectedly, or whose worker dies, goes again;
a nurture drip whose last step cannot be sent still ends, and the managers hear."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.channels import touches, touchsend
from bot.jobs.sweeper import sweep_once_locked
from bot.store.touch_tables import Touch
from tests.lifecycle_kit import events, lead_row, leg_for, sms_in, status, texts, work
from tests.test_lifecycle import post_lead, travel_and_run
from tests.test_lifecycle import settings, smtp, tm  # noqa: F401 - real calling hours, SMTP, moved clock


def no_answer_then_call_me(client, auth, services, emulator, signed) -> str:  # noqa: ANN001
    """A lead whose first call went unanswered texts 'call me': a callback touch, due now."""
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    assert "Calling you now!" in sms_in(client, services, signed, "call me")
    return lead_id


def callback(services, lead_id: str) -> Touch:  # noqa: ANN001
    with services.sessions() as s:
        return s.scalars(select(Touch).where(Touch.lead_id == lead_id, Touch.kind == "callback")).one()


def test_a_callback_whose_send_fails_unexpectedly_is_sent_by_the_retry(client, auth, services, emulator, tm,
                                                                      signed, monkeypatch):
    lead_id = no_answer_then_call_me(client, auth, services, emulator, signed)
    real = touchsend.channel_for
    failures = []

    def database_gone_once(s, lead, touch):  # noqa: ANN001, ANN202
        if not failures:
            failures.append(touch.id)
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return real(s, lead, touch)

    monkeypatch.setattr(touchsend, "channel_for", database_gone_once)
    tm.release()
    work(services)  # the send fails; RQ schedules its retry
    assert failures and callback(services, lead_id).status == "planned"  # not stuck 'sending'
    tm.release()  # the retry comes due
    work(services)
    assert len(emulator.of("/Calls.json")) == 2
    assert callback(services, lead_id).status == "sent"


def test_a_callback_whose_worker_died_sending_is_swept_and_sent_once(client, auth, services, emulator, tm,
                                                                     signed):
    lead_id = no_answer_then_call_me(client, auth, services, emulator, signed)
    touch_id = callback(services, lead_id).id
    with services.sessions() as s:
        assert touches.claim(s, touch_id)  # a worker took it, and was SIGKILLed before sending
    services.redis.delete(f"rq:job:touch-{touch_id}")  # RQ forgot it (a dead worker's job, cleaned up)
    services.redis.delete(services.queue.key)
    tm.travel(tm.now() + timedelta(seconds=touches.STUCK_AFTER_S - 5))
    assert sweep_once_locked(services, 1) == 0  # a send may still be under way
    services.redis.delete("leadbot:sweeper:lock")
    tm.travel(tm.now() + timedelta(seconds=10))
    assert sweep_once_locked(services, 1) == 1
    assert [d for _, d in events(services, lead_id, "requeued")] == [
        {"by": "sweeper", "touch": touch_id, "was": "sending"}]
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 2
    assert callback(services, lead_id).status == "sent"


def test_a_drip_whose_last_step_cannot_go_still_ends_and_the_managers_hear(client, auth, services, emulator,
                                                                         tm, smtp):
    """not_ready ends on an email step; a call lead may have no email. Before, the drip never ended."""
    lead_id = post_lead(client, auth, service="kitchen remodel", email=None)
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    for answer in ({"digits": "1"}, {"speech": "five grand"}, {"speech": "in the spring"},
                   {"speech": "I need to ask my wife"}):
        leg.reply(**answer)
    status(leg, form, "completed")
    assert lead_row(services, lead_id).status == "nurturing"
    entered = tm.now()
    travel_and_run(tm, services, entered + timedelta(days=3, minutes=1))
    assert len(texts(emulator)) == 1  # the check-in text
    travel_and_run(tm, services, entered + timedelta(days=14, minutes=1))  # the email step: no address
    tm.release()
    work(services)  # the managers' email
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")] == [
        "the number cannot take this channel"]
    assert [d["sent"] for _, d in events(services, lead_id, "nurture_finished")] == [1]
    [managers] = smtp.envelopes
    assert b"no reply to the nurture drip" in managers.content


def test_a_retry_call_twilio_keeps_refusing_is_not_taken_by_the_contact_sweeper(client, auth, services,
                                                                               emulator, tm):
    """The touch's attempt waits in 'retry' through a Twilio outage; the contact job's sweeper used to
    take it as its own, re-enqueue the lead on every pass and dial it beside the touch's retry."""
    from bot.jobs.sweeper import PLACING_STALE_S, sweep

    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    emulator.script("call", (503, {"code": 20500, "message": "Service Unavailable", "status": 503}))
    travel_and_run(tm, services, tm.next_due(lead_id))  # the +2 min retry: Twilio refuses it
    [retry] = [t for t in tm.planned(lead_id) if t.kind == "retry"]
    tm.travel(tm.now() + timedelta(seconds=PLACING_STALE_S + 10))
    assert sweep(services) == 0
    assert events(services, lead_id, "requeued") == []
    tm.release()  # the touch's own retry: Twilio answers again
    work(services)
    assert len(emulator.of("/Calls.json")) == 3  # the first call, the refused retry, the retry again
    assert len(emulator.calls) == 2  # Twilio created two calls: no second dial of the retry
    with services.sessions() as s:
        assert s.get_one(Touch, retry.id).status == "sent"


def test_a_retry_whose_job_failed_for_good_is_not_sent_days_later(client, auth, services, emulator, tm, smtp):
    """The +2 min retry's job failed for good; when RQ forgets it days later the touch looked lost and
    the sweeper dialled it then. Now it is closed, the cadence ends, and the managers hear."""
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    [retry] = [t for t in tm.planned(lead_id) if t.kind == "retry"]
    services.redis.delete(f"rq:job:touch-{retry.id}")  # failed for good, then expired from the registry
    tm.travel(tm.now() + timedelta(days=8))
    assert sweep_once_locked(services, 1) == 1
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 1  # never dialled a week late
    with services.sessions() as s:
        assert s.get_one(Touch, retry.id).status == "cancelled"
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")][0].startswith("not sent: due")
    assert lead_row(services, lead_id).status == "no_answer"
    assert [b"Unreachable lead" in e.content for e in smtp.envelopes] == [True]
