"""SMS handoff, backup email over a real SMTP server, and the SLA ladder driven through RQ jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from bot.jobs.worker import LeadWorker
from bot.runtime.replinks import read_token
from bot.store.handoff_tables import Handoff
from bot.store.tables import Lead
from handoff import jobs
from handoff.loststeps import sweep_lost
from handoff.scorecard import rep_scorecard
from handoff.service import begin_sms_handoff, rep_reply
from tests.conftest import drain
from tests.handoff.live import (
    ALICE,
    BOB,
    CARA,
    DAN,
    event,
    events,
    fire,
    make_lead,
    outcome,
    run_jobs,
    scheduled,
)


@pytest.fixture
def inbox(smtp_server):  # noqa: ANN001, ANN201
    return smtp_server[1]


def mails(inbox) -> list[tuple[EmailMessage, list[str]]]:  # noqa: ANN001
    """Every message the SMTP server accepted, with its envelope recipients."""
    return [(message_from_bytes(e.content, policy=default), list(e.rcpt_tos)) for e in inbox.envelopes]


def hand_off(services, lead_id: str, reason: str | None = None) -> None:  # noqa: ANN001
    with services.sessions() as s:
        begin_sms_handoff(services, s, s.get(Lead, lead_id), outcome("handoff_sms"), reason)
        s.commit()


def reply(services, phone: str, body: str) -> str | None:  # noqa: ANN001
    with services.sessions() as s:
        text = rep_reply(services, s, phone, body)
        s.commit()
    return text


def handoffs(services, lead_id: str) -> list[tuple[str, str]]:  # noqa: ANN001
    with services.sessions() as s:
        rows = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id).order_by(Handoff.try_number))
        return [(h.rep_name, h.status) for h in rows]


def handoff_ids(services, lead_id: str) -> list[tuple[str, str]]:  # noqa: ANN001
    with services.sessions() as s:
        return [(h.id, h.rep_name) for h in s.scalars(select(Handoff).where(Handoff.lead_id == lead_id))]


def texts_to(emulator, phone: str) -> list[str]:  # noqa: ANN001
    return [m["body"] for m in emulator.messages if m["to"] == phone]


def test_handoff_text_and_backup_email_with_managers_in_cc(services, emulator, inbox):
    lead_id = make_lead(services, email="maria@example.com")
    hand_off(services, lead_id)
    assert emulator.messages == []  # nothing leaves before the caller commits and a worker runs
    run_jobs(services)

    text, = texts_to(emulator, ALICE)
    assert emulator.messages[0]["from"] == services.settings.caller_id
    lines = text.split("\n")
    assert lines[0] == "New lead for Alice: Maria Lopez +15125550100"
    assert lines[1].startswith("roofing - form sent ") and lines[1].endswith(" ago")
    assert lines[2:5] == ["Budget: $12,000", "Timing: right away", "Authority: me"]
    (h_id, _), = handoff_ids(services, lead_id)
    assert lines[5].startswith("http://leadbot.test/console/r/")  # the rep's signed lead page
    assert read_token(services.settings.secret_key, lines[5].rsplit("/", 1)[1]) == h_id
    assert lines[6] == "Reply 1 when you've called"
    assert len(text) < 320

    (msg, rcpt), = mails(inbox)
    assert msg["To"] == "alice@example.com" and msg["Cc"] == "priya@example.com, tom@example.com"
    assert sorted(rcpt) == ["alice@example.com", "priya@example.com", "tom@example.com"]
    assert msg["From"] == "leadbot@example.com" and msg["X-Leadbot-Lead-Id"] == lead_id
    assert msg["Subject"].startswith("New lead for Alice Able: Maria Lopez (roofing) - reply by ")
    body = msg.get_content()
    assert "Email:     maria@example.com" in body and "  Budget: $12,000" in body
    assert "Response timer: call the prospect and reply 1 to the text by " in body
    assert "(5 min from now)" in body
    assert f"Lead: {lines[5]}" in body
    assert "Copied: Priya Natarajan, Tom Becker" in body

    assert events(services, lead_id) == ["handoff_matched", "handoff_sms_sent", "handoff_email_sent"]
    sent = event(services, lead_id, "handoff_sms_sent")
    assert sent["to"] == ALICE and sent["sla_seconds"] == 300
    # The ladder: a reminder at half the SLA and the escalation at the SLA, both waiting in Redis.
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    registry = ScheduledJobRegistry(queue=services.queue)
    now = datetime.now(UTC)
    remind_at = registry.get_scheduled_time(f"handoff-remind-{h.id}")
    escalate_at = registry.get_scheduled_time(f"handoff-escalate-{h.id}")
    assert timedelta(seconds=140) < remind_at - now <= timedelta(seconds=150)
    assert timedelta(seconds=290) < escalate_at - now <= timedelta(seconds=300)


def test_sms_reply_acknowledges_and_stops_the_escalation(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert reply(services, "+15125550100", "yes") is None  # the prospect: not a rep, their flow handles it
    assert reply(services, ALICE, "who is this?") == "Reply 1 once you've called Maria Lopez +15125550100."
    assert handoffs(services, lead_id) == [("Alice Able", "open")]
    assert f"handoff-escalate-{h.id}" in scheduled(services)

    assert reply(services, ALICE, " Done! ") == "Thanks Alice! Maria Lopez (roofing) is marked as called."
    assert handoffs(services, lead_id) == [("Alice Able", "acked")]
    assert f"handoff-remind-{h.id}" not in scheduled(services)
    assert f"handoff-escalate-{h.id}" not in scheduled(services)
    # Even if cancelling had failed, the jobs find the handoff acknowledged and do nothing.
    assert jobs.remind(h.id) == "skipped" and jobs.escalate(h.id) == "skipped"
    drain(services)
    assert len(emulator.messages) == 1 and len(inbox.envelopes) == 1
    with services.sessions() as s:
        assert s.get(Lead, lead_id).status == "handed_off"
    acked = event(services, lead_id, "handoff_acked")
    assert acked["via"] == "sms" and acked["within_sla"] is True and acked["rep"] == "Alice Able"
    assert reply(services, ALICE, "1") == "Thanks! You have no open leads right now."
    with services.sessions() as s:  # closed: an open transaction would block the next test's DROP on PostgreSQL
        card, = [c for c in rep_scorecard(s) if c["rep_name"] == "Alice Able"]
    assert card["handoffs"] == 1 and card["within_sla"] == 1 and card["missed"] == 0


def test_no_ack_reminds_then_reassigns_and_tells_the_managers(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    with services.sessions() as s:
        alice = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()

    fire(services, f"handoff-remind-{alice.id}")
    reminder = texts_to(emulator, ALICE)[-1]
    assert reminder.startswith("Reminder: Maria Lopez +15125550100 (roofing) handed to you ")
    assert "left before your manager is told." in reminder and reminder.endswith("Reply 1 when you've called")
    link = next(line for line in texts_to(emulator, ALICE)[0].split("\n") if "/console/r/" in line)
    assert link in reminder.split("\n")  # one link per handoff: the text's, the email's and the reminder's
    assert jobs.remind(alice.id) == "skipped"  # once only

    fire(services, f"handoff-escalate-{alice.id}")
    assert handoffs(services, lead_id) == [("Alice Able", "reassigned"), ("Bob Baker", "open")]
    assert texts_to(emulator, ALICE)[-1] == ("Maria Lopez (roofing) was reassigned to Bob Baker: no reply "
                                             "within 5 min. No need to call.")
    bob_text, = texts_to(emulator, BOB)
    assert bob_text.startswith("Reassigned: Alice Able did not reply in 5 min\nNew lead for Bob: Maria Lopez")
    escalation = [(m, r) for m, r in mails(inbox) if m["X-Leadbot-Kind"] == "escalation"]
    (msg, rcpt), = escalation
    assert msg["To"] == "priya@example.com, tom@example.com" and msg["Cc"] == "alice@example.com"
    assert msg["Subject"] == "SLA missed: Alice Able did not acknowledge Maria Lopez within 5 min"
    assert "Alice Able (+15125550101) did not acknowledge this lead" in msg.get_content()
    assert "The lead has been reassigned to Bob Baker (+15125550102)." in msg.get_content()
    assert [m["To"] for m, _ in mails(inbox) if m["X-Leadbot-Kind"] == "handoff"] == [
        "alice@example.com", "bob@example.com"]
    assert jobs.escalate(alice.id) == "skipped"
    assert events(services, lead_id) == [
        "handoff_matched", "handoff_sms_sent", "handoff_email_sent", "handoff_reminder", "handoff_escalated",
        "handoff_reassigned", "handoff_email_sent", "handoff_sms_sent", "handoff_email_sent"]
    assert event(services, lead_id, "handoff_escalated")["next_rep"] == "Bob Baker"
    # Alice answers late: she is told Bob has it; Bob's acknowledgement is the one that counts.
    late = reply(services, ALICE, "1")
    assert late == "Thanks. Maria Lopez was already reassigned to Bob Baker, no need to call."
    assert reply(services, BOB, "ok").startswith("Thanks Bob!")
    assert handoffs(services, lead_id) == [("Alice Able", "reassigned"), ("Bob Baker", "acked")]


def test_when_everyone_misses_the_last_one_stays_missed_and_a_late_ack_counts_late(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    drain(services, rounds=40)  # every timer fires at once: the lead walks down the whole list
    assert handoffs(services, lead_id) == [("Alice Able", "reassigned"), ("Bob Baker", "reassigned"),
                                           ("Cara Cole", "reassigned"), ("Dan Dorn", "missed")]
    assert [len(texts_to(emulator, p)) for p in (ALICE, BOB, CARA, DAN)] == [3, 3, 3, 2]
    last = [m for m, _ in mails(inbox) if m["X-Leadbot-Kind"] == "escalation"][-1]
    assert "Nobody else is available: please call the prospect yourself." in last.get_content()
    assert reply(services, DAN, "called").startswith("Thanks Dan!")
    assert event(services, lead_id, "handoff_acked")["late"] is True


def test_a_failed_text_still_sends_the_email_and_starts_the_clock(services, emulator, inbox):
    emulator.script("message", (400, {"code": 21614, "message": "not a mobile number", "status": 400}))
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    assert emulator.messages == []
    assert event(services, lead_id, "handoff_sms_failed")["kind"] == "handoff"
    assert len(inbox.envelopes) == 1
    assert events(services, lead_id) == ["handoff_matched", "handoff_sms_failed", "handoff_email_sent"]
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert h.due_at is not None and f"handoff-escalate-{h.id}" in scheduled(services)


def test_transient_text_failure_is_retried_once_not_sent_twice(services, emulator, inbox):
    emulator.script("message", (503, {"code": 20503, "message": "try later", "status": 503}))
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    assert texts_to(emulator, ALICE) == [] and inbox.envelopes == []
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert h.due_at is None  # the claim was released for the retry
    fire(services, f"handoff-send-{h.id}")  # RQ's retry, after its back-off
    assert len(texts_to(emulator, ALICE)) == 1
    assert events(services, lead_id) == ["handoff_matched", "handoff_sms_failed", "handoff_sms_sent",
                                         "handoff_email_sent"]
    assert jobs.send_handoff(h.id) == "skipped"
    assert len(texts_to(emulator, ALICE)) == 1


def test_reason_heads_the_text(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id, reason="Asked for a text")
    run_jobs(services)
    assert texts_to(emulator, ALICE)[0].startswith("Asked for a text\nNew lead for Alice:")
    (msg, _), = mails(inbox)
    assert msg.get_content().startswith("Asked for a text\r\n")  # SMTP carries CRLF line ends


def test_opt_out_cancels_the_open_handoff_and_its_timers(services, emulator, inbox):
    from handoff.service import cancel_handoffs

    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
        assert cancel_handoffs(services, s, lead_id, "opted out (sms keyword)", "blocked: opted out") == 1
        s.commit()
    assert handoffs(services, lead_id) == [("Alice Able", "cancelled")]
    assert not [j for j in scheduled(services) if h.id in j]
    assert jobs.escalate(h.id) == "skipped" and reply(services, ALICE, "1").startswith("Thanks! You have no")
    assert event(services, lead_id, "handoff_cancelled")["handoffs"] == [h.id]
    assert event(services, lead_id, "touch_blocked")["reason"] == "blocked: opted out"


def test_the_reps_reminder_is_blocked_when_the_number_opted_out_another_way(services, emulator, inbox):
    """A DNC import does not go through the lead's opt-out path: the reminder job checks the number itself."""
    from bot.compliance import gate

    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    h_id = handoffs_ids(services, lead_id)[0]
    with services.sessions() as s:
        gate.opt_out(s, "+15125550100", "dnc import")
        s.commit()
    fire(services, f"handoff-remind-{h_id}")
    assert len(texts_to(emulator, ALICE)) == 1  # the handoff text only, no reminder
    assert event(services, lead_id, "touch_blocked") == {
        "kind": "rep_reminder", "channel": "sms", "rep": "Alice Able", "reason": "blocked: opted out",
        "handoff": h_id}
    sent = len(emulator.messages)
    fire(services, f"handoff-escalate-{h_id}")  # the SLA passes: nobody else is offered the lead
    assert handoffs(services, lead_id) == [("Alice Able", "cancelled")]
    assert len(emulator.messages) == sent + 1 and texts_to(emulator, ALICE)[-1].startswith(
        "Maria Lopez +15125550100 has opted out")  # Alice, who holds it, is told instead
    assert len(mails(inbox)) == 1  # the handoff's backup email only: no escalation about it


def test_a_rep_holding_the_lead_is_told_when_the_prospect_opts_out(services, emulator, inbox):
    from bot.channels.conversation import opt_out

    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    assert reply(services, ALICE, "1").startswith("Thanks")  # acknowledged: the lead is Alice's now
    with services.sessions() as s:
        opt_out(services, s, "+15125550100", "sms keyword")
        s.commit()
    run_jobs(services)
    assert texts_to(emulator, ALICE)[-1] == ("Maria Lopez +15125550100 has opted out of calls and texts. "
                                             "Please don't contact them about this lead.")
    assert jobs.tell_opted_out(handoffs_ids(services, lead_id)[0]) == "skipped"  # once


def test_a_number_imported_to_the_dnc_list_is_told_to_its_rep_by_the_sweeper(services, emulator, inbox):
    """A DNC import does not go through the STOP path: the sweeper finds the rep holding the lead."""
    from bot.compliance import gate
    from bot.store.tables import utcnow
    from handoff.alerts import sweep_lost as sweep_alerts

    lead_id = make_lead(services)
    hand_off(services, lead_id)
    run_jobs(services)
    reply(services, ALICE, "1")
    with services.sessions() as s:
        gate.opt_out(s, "+15125550100", "dnc import")
        s.commit()
    assert sweep_alerts(services, now=utcnow()) == 0  # too soon: a STOP's own job may be on its way
    assert sweep_alerts(services, now=utcnow() + timedelta(minutes=1)) == 1
    run_jobs(services)
    assert texts_to(emulator, ALICE)[-1].startswith("Maria Lopez +15125550100 has opted out")
    assert sweep_alerts(services, now=utcnow() + timedelta(minutes=2)) == 0  # told once


def test_a_lead_whose_number_is_on_the_dnc_list_is_never_offered(services, emulator, inbox):
    from bot.compliance import gate

    lead_id = make_lead(services)
    with services.sessions() as s:
        gate.opt_out(s, "+15125550100", "dnc import")
        s.commit()
    hand_off(services, lead_id)
    run_jobs(services)
    assert texts_to(emulator, ALICE) == [] and mails(inbox) == []
    assert handoffs(services, lead_id) == [("Alice Able", "cancelled")]
    assert event(services, lead_id, "touch_blocked")["kind"] == "rep_handoff"


def handoffs_ids(services, lead_id: str) -> list[str]:  # noqa: ANN001
    with services.sessions() as s:
        return list(s.scalars(select(Handoff.id).where(Handoff.lead_id == lead_id)))


def test_a_handoff_queued_while_redis_was_down_is_sent_and_escalated_by_the_sweeper(services, emulator, inbox,
                                                                                    valkey):
    lead_id = make_lead(services)
    valkey.stop()  # the outcome lands in a Redis outage: no rotation, and the text's job cannot be queued
    try:
        hand_off(services, lead_id)
    finally:
        valkey.start()
    services.redis.connection_pool.reset()
    services.redis.connection_pool.connection_kwargs["port"] = valkey.port  # it may come back on a new port
    services.redis.flushall()
    matched = event(services, lead_id, "handoff_matched")
    assert matched["why"]["rule"] == "random_tie_break"  # the shared rotation was down: still matched
    with services.sessions() as s:
        first = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert first.status == "open" and first.due_at is None and services.queue.count == 0

    now = datetime.now(UTC).replace(tzinfo=None)
    assert sweep_lost(services, now) == 0  # just offered: its job may still be on its way
    assert sweep_lost(services, now + timedelta(seconds=60)) == 1
    assert sweep_lost(services, now + timedelta(seconds=60)) == 0  # queued now: not lost twice
    run_jobs(services)
    assert len(texts_to(emulator, first.rep_phone)) == 1

    # Redis loses its data again (no AOF, say): the escalation timer goes with it.
    services.redis.flushall()
    with services.sessions() as s:
        due = s.get(Handoff, first.id).due_at
    assert sweep_lost(services, due) == 0  # not overdue yet
    assert sweep_lost(services, due + timedelta(seconds=60)) == 1
    run_jobs(services)
    (_, first_status), (second_name, second_status) = handoffs(services, lead_id)
    assert (first_status, second_status) == ("reassigned", "open") and second_name != first.rep_name
    assert len(texts_to(emulator, first.rep_phone)) == 2  # the handoff, then "reassigned to ..."
    # The second rep's own timer is in Redis: nothing is lost, nothing is sent twice.
    assert sweep_lost(services, due + timedelta(seconds=400)) == 0


def test_a_failed_handoff_job_is_left_for_a_person_not_retried_every_sweep(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    with services.sessions() as s:
        alice = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    services.queue.remove(f"handoff-send-{alice.id}")  # it ran and failed, as far as Redis knows
    Job.fetch(f"handoff-send-{alice.id}", connection=services.redis).set_status(JobStatus.FAILED)
    assert sweep_lost(services, datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=60)) == 0


def test_a_lost_backup_email_and_reminder_are_sent_by_the_sweeper_once(services, emulator, inbox):
    lead_id = make_lead(services)
    hand_off(services, lead_id)
    LeadWorker([services.queue], connection=services.redis).work(burst=True, max_jobs=1)  # the text only
    services.redis.flushall()  # Redis loses the queued email and the scheduled reminder and escalation
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert len(texts_to(emulator, ALICE)) == 1 and mails(inbox) == []

    assert sweep_lost(services, h.created_at + timedelta(seconds=60)) == 1  # the email; too early to remind
    run_jobs(services)
    assert [m["X-Leadbot-Kind"] for m, _ in mails(inbox)] == ["handoff"]
    halfway = h.created_at + (h.due_at - h.created_at) / 2
    assert sweep_lost(services, halfway + timedelta(seconds=31)) == 1  # the reminder, not the email again
    run_jobs(services)
    assert texts_to(emulator, ALICE)[-1].startswith("Reminder: Maria Lopez")
    assert sweep_lost(services, halfway + timedelta(seconds=60)) == 0
    assert len(mails(inbox)) == 1 and len(texts_to(emulator, ALICE)) == 2
