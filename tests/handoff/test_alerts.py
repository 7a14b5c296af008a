"""Alerts that must not be lost: what Redis lost (the managers' alert, the accepted-transfer text) and
an SLA-missed email the mail server refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.store.handoff_tables import Handoff
from bot.store.tables import Lead, utcnow
from handoff.alerts import sweep_lost
from tests.handoff.live import ALICE, events, make_lead, rep_leg, run_jobs, start_transfer


def test_a_lost_managers_alert_is_sent_by_the_sweeper(services, emulator, smtp_server):
    lead_id = make_lead(services, service="plumbing")  # nobody sells it: the lead is listed
    start_transfer(services, lead_id)
    services.queue.empty()  # Redis lost the alert job
    assert sweep_lost(services, now=utcnow()) == 0  # too soon: it may still be on its way
    assert sweep_lost(services, now=utcnow() + timedelta(minutes=1)) == 1
    run_jobs(services)
    envelope, = smtp_server[1].envelopes
    assert envelope.rcpt_tos == ["priya@example.com", "tom@example.com"]
    assert sweep_lost(services, now=utcnow() + timedelta(minutes=2)) == 0  # told: nothing more
    assert events(services, lead_id) == ["handoff_unassigned", "handoff_email_sent"]


def test_a_lost_accepted_transfer_text_is_sent_by_the_sweeper(client, services, emulator, smtp_server):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])
    leg.reply(digits="1")
    services.queue.empty()  # Redis lost the job that texts and emails her
    assert sweep_lost(services, now=utcnow() + timedelta(minutes=1)) == 1
    run_jobs(services)
    texts = [m["body"] for m in emulator.messages if m["to"] == ALICE]
    assert len(texts) == 1 and texts[0].startswith("Live transfer - you are talking with them now")
    envelope, = smtp_server[1].envelopes
    assert envelope.rcpt_tos == ["alice@example.com", "priya@example.com", "tom@example.com"]
    assert sweep_lost(services, now=utcnow() + timedelta(minutes=2)) == 0


def test_a_failed_sla_missed_email_is_sent_again(services, emulator, smtp_server):
    from handoff.service import begin_sms_handoff
    from tests.handoff.live import fire, outcome
    from tests.procs import free_port

    lead_id = make_lead(services)
    with services.sessions() as s:
        begin_sms_handoff(services, s, s.get(Lead, lead_id), outcome("handoff_sms"))
        s.commit()
    run_jobs(services)
    with services.sessions() as s:
        alice = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    working = services.settings
    services.settings = working.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    fire(services, f"handoff-escalate-{alice.id}")  # the SLA passes while the mail server is down
    assert events(services, lead_id)[-1] == "handoff_email_failed"
    services.settings = working  # it is back
    fire(services, f"handoff-escalation-mail-{alice.id}")
    escalation = [e for e in smtp_server[1].envelopes if b"Subject: SLA missed: Alice Able" in e.content]
    assert [e.rcpt_tos for e in escalation] == [["priya@example.com", "tom@example.com", "alice@example.com"]]
    assert b"The lead has been reassigned to Bob Baker" in escalation[0].content
