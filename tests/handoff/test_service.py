"""begin_warm_transfer when nobody is on shift or nobody sells the service; rep_reply routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from bot.store.handoff_tables import Handoff, Transfer
from bot.store.tables import Lead
from handoff.service import rep_reply
from tests.handoff.live import ALICE, event, events, fire, make_lead, run_jobs, start_transfer

CHICAGO = ZoneInfo("America/Chicago")


def only_tomorrow_roster(path) -> datetime:  # noqa: ANN001
    """Alice works 9 to 5 tomorrow (Chicago) and no other day; returns when her shift starts."""
    tomorrow = datetime.now(CHICAGO) + timedelta(days=1)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[tomorrow.weekday()]
    path.write_text(f"""\
managers: [{{name: Priya Natarajan, email: priya@example.com}}]
salespeople:
  - name: Alice Able
    phone: "+15125550101"
    email: alice@example.com
    services: [roofing]
    hours: {{timezone: America/Chicago, {day}: "09:00-17:00"}}
""")
    return tomorrow.replace(hour=9, minute=0, second=0, microsecond=0).astimezone(UTC)


def test_nobody_on_shift_prospect_hears_when_and_the_text_waits_for_the_shift(services, emulator,
                                                                               roster_path):
    starts = only_tomorrow_roster(roster_path)
    lead_id = make_lead(services)
    verbs = start_transfer(services, lead_id)
    assert [v["verb"] for v in verbs] == ["Say", "Say", "Hangup"]
    assert verbs[1]["text"] == ("Our specialists have finished for the day, so I can't connect you right "
                                "now. Alice will call you at 9 AM tomorrow. Thank you, goodbye.")
    assert verbs[1]["voice"] == "Polly.Joanna"
    with services.sessions() as s:
        assert s.scalars(select(Transfer)).all() == []
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
        assert s.get(Lead, lead_id).status == "qualified"
    assert (h.rep_name, h.mode, h.status, h.due_at) == ("Alice Able", "sms", "open", None)
    assert h.created_at == starts.replace(tzinfo=None)  # the offer (and the SLA clock) starts with her shift
    run_jobs(services)
    assert emulator.requests == []  # no call, and no text at night
    registry = ScheduledJobRegistry(queue=services.queue)
    assert registry.get_scheduled_time(f"handoff-send-{h.id}") == starts
    assert events(services, lead_id) == ["handoff_matched", "handoff_scheduled"]
    assert event(services, lead_id, "handoff_matched")["why"]["rule"].startswith("next_shift:")
    fire(services, f"handoff-send-{h.id}")  # her shift starts
    assert [m["to"] for m in emulator.messages] == [ALICE]


def test_nobody_sells_the_service_managers_are_emailed(services, emulator, smtp_server):
    lead_id = make_lead(services, service="plumbing")
    verbs = start_transfer(services, lead_id)
    assert verbs[-2]["text"] == "Thank you. A specialist will get back to you as soon as possible. Goodbye."
    assert verbs[-1]["verb"] == "Hangup"
    run_jobs(services)
    assert emulator.requests == []
    assert events(services, lead_id) == ["handoff_unassigned", "handoff_email_sent"]
    envelope, = smtp_server[1].envelopes
    assert envelope.rcpt_tos == ["priya@example.com", "tom@example.com"]
    assert b"Subject: Unassigned lead: Maria Lopez (plumbing) - nobody available" in envelope.content


def test_a_broken_roster_edit_keeps_the_last_good_one(services, emulator, roster_path, caplog):
    start_transfer(services, make_lead(services))  # loads the roster
    roster_path.write_text(roster_path.read_text().replace('phone: "+15125550101"', "phone: call me", 1))
    lead_id = make_lead(services)
    verbs = start_transfer(services, lead_id)
    assert verbs[-1]["verb"] == "Dial"
    assert "keeping the last good roster" in caplog.text
    assert "roster.yaml:6: salespeople[0].phone: not a valid phone number 'call me'" in caplog.text


def test_rep_reply_ignores_prospects_and_answers_reps(services):
    with services.sessions() as s:
        assert rep_reply(services, s, "+15125550100", "1") is None
        assert rep_reply(services, s, ALICE, "1") == "Thanks! You have no open leads right now."
