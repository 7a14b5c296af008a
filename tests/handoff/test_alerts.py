"""The sweeper re-sends what Redis lost: the managers' alert for a listed lead, the accepted-transfer text."""

from __future__ import annotations

from datetime import timedelta

from bot.store.tables import utcnow
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
