"""begin_warm_transfer when nobody is on shift or nobody sells the service; rep_reply routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from bot.store.handoff_tables import Handoff, Transfer
from bot.store.tables import Lead
from bot.twilio.twiml_player import parse_twiml
from handoff.service import rep_reply
from handoff.waiting import drain, unassigned_leads
from tests.handoff.live import ALICE, event, events, make_lead, run_jobs, start_transfer

CHICAGO = ZoneInfo("America/Chicago")


def only_tomorrow_roster(path, capacity: int | None = None) -> datetime:  # noqa: ANN001
    """Alice works 9 to 5 tomorrow (Chicago) and no other day; returns when her shift starts."""
    tomorrow = datetime.now(CHICAGO) + timedelta(days=1)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[tomorrow.weekday()]
    path.write_text(f"""\
managers: [{{name: Priya Natarajan, email: priya@example.com, phone: "+15125550190"}}]
salespeople:
  - name: Alice Able
    phone: "+15125550101"
    email: alice@example.com
    services: [roofing]
    hours: {{timezone: America/Chicago, {day}: "09:00-17:00"}}
""" + (f"    capacity: {capacity}\n" if capacity else ""))
    return tomorrow.replace(hour=9, minute=0, second=0, microsecond=0).astimezone(UTC)


def test_nobody_on_shift_prospect_hears_when_managers_are_told_and_the_lead_waits_for_the_shift(
        services, emulator, roster_path, smtp_server):
    starts = only_tomorrow_roster(roster_path)
    lead_id = make_lead(services)
    verbs = start_transfer(services, lead_id)
    assert [v["verb"] for v in verbs] == ["Say", "Say", "Hangup"]
    assert verbs[1]["text"] == ("Our specialists have finished for the day, so I can't connect you right "
                                "now. Alice will call you at 9 AM tomorrow. Thank you, goodbye.")
    assert verbs[1]["voice"] == "Polly.Joanna"
    with services.sessions() as s:
        assert s.scalars(select(Transfer)).all() == []
        assert s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).all() == []
        assert s.get(Lead, lead_id).status == "qualified"
        waiting, = unassigned_leads(s)
    assert waiting["lead_id"] == lead_id and waiting["reason"].startswith("every matched rep is off shift")
    # The managers hear of it at once: a text to the one with a phone, and the email.
    run_jobs(services)
    assert [(m["to"], m["body"].split(":")[0]) for m in emulator.messages] == [("+15125550190",
                                                                                "Unassigned lead")]
    assert events(services, lead_id) == ["handoff_unassigned", "handoff_sms_sent", "handoff_email_sent"]
    envelope, = smtp_server[1].envelopes
    assert envelope.rcpt_tos == ["priya@example.com"]
    # Her shift starts (the drain is scheduled for then; the sweeper also runs it): she is offered the lead.
    registry = ScheduledJobRegistry(queue=services.queue)
    assert registry.get_scheduled_time(f"handoff-waiting-{starts:%Y%m%dT%H%M}") == starts
    assert drain(services, now=starts - timedelta(minutes=1)) == 0
    assert drain(services, now=starts + timedelta(minutes=1)) == 1
    run_jobs(services)
    assert [m["to"] for m in emulator.messages] == ["+15125550190", ALICE]
    assert emulator.messages[-1]["body"].startswith("Waited ")
    assert event(services, lead_id, "handoff_from_waiting")["rep"] == "Alice Able"
    with services.sessions() as s:
        assert unassigned_leads(s) == []


def test_when_her_shift_starts_the_waiting_lead_is_offered_before_a_newer_one(services, emulator,
                                                                               roster_path):
    from handoff.service import begin_warm_transfer
    from tests.handoff.live import outcome

    starts = only_tomorrow_roster(roster_path, capacity=1)
    older = make_lead(services)
    start_transfer(services, older)
    newer = make_lead(services, phone="+15125550111")
    response = VoiceResponse()
    with services.sessions() as s:  # the newer lead qualifies a minute into her shift, before any sweep
        begin_warm_transfer(services, s, s.get(Lead, newer), outcome(), "CAnewer", response,
                            now=starts + timedelta(minutes=1))
        s.commit()
    with services.sessions() as s:
        offered = s.scalars(select(Handoff.lead_id).where(Handoff.rep_name == "Alice Able")).all()
        waiting = unassigned_leads(s)
    assert offered == [older]
    assert [(w["lead_id"], w["reason"]) for w in waiting] == [
        (newer, "every matched rep is at capacity (Alice Able)")]
    assert "as soon as possible" in str(response)  # at capacity: no false promise of a time


def test_a_lead_offered_from_the_unassigned_list_tells_the_crm_it_was_handed_off(services, emulator,
                                                                                   roster_path, tmp_path):
    """The CRM hears lead.handed_off whether the rep was found at once or when the lead left the list."""
    from bot.runtime import crm
    from bot.store.source_tables import WebhookDelivery

    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text('subscribers:\n  - url: http://127.0.0.1:9/crm\n    events: ["lead.handed_off"]\n'
                     '    secret_env: CRM_SECRET\n')
    services.extras[crm._CACHE] = crm.load_subscribers(hooks, environ={"CRM_SECRET": "s3cret"})
    starts = only_tomorrow_roster(roster_path)
    lead = make_lead(services)
    start_transfer(services, lead)  # nobody on shift: the lead waits on the list
    with services.sessions() as s:
        assert [w["lead_id"] for w in unassigned_leads(s)] == [lead]
        assert s.scalars(select(WebhookDelivery.lead_id)).all() == []
    assert drain(services, now=starts + timedelta(minutes=1)) == 1
    with services.sessions() as s:
        sent = s.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.lead_id == lead)).all()
    assert sent == ["lead.handed_off"]


def test_nobody_sells_the_service_managers_are_emailed(services, emulator, smtp_server):
    lead_id = make_lead(services, service="plumbing")
    verbs = start_transfer(services, lead_id)
    assert verbs[-2]["text"] == "Thank you. A specialist will get back to you as soon as possible. Goodbye."
    assert verbs[-1]["verb"] == "Hangup"
    run_jobs(services)
    assert emulator.requests == []
    assert events(services, lead_id) == ["handoff_unassigned", "handoff_email_sent"]  # no manager phone
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


def test_a_lead_a_rep_passes_back_onto_the_list_is_reported_again(services, emulator, roster_path,
                                                                   smtp_server):
    """Listed at night, offered to Alice at her shift, passed back ('2') with nobody else: the
    managers hear of it again (they last heard it was handed out); before, the night's alert
    counted for this listing too and nobody was told."""
    starts = only_tomorrow_roster(roster_path)
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)  # the night's alert: text and email
    assert drain(services, now=starts + timedelta(minutes=1)) == 1
    run_jobs(services)
    with services.sessions() as s:
        reply = rep_reply(services, s, ALICE, "2")
        s.commit()
    assert "manager" in reply, reply
    run_jobs(services)
    to_managers = [m for m in emulator.messages if m["to"] == "+15125550190"]
    assert [m["body"].split(":")[0] for m in to_managers] == ["Unassigned lead", "Unassigned lead"]
    assert [e.rcpt_tos for e in smtp_server[1].envelopes].count(["priya@example.com"]) == 2
    with services.sessions() as s:
        assert [w["lead_id"] for w in unassigned_leads(s)] == [lead_id]


def test_a_lead_nobody_acknowledged_in_time_goes_on_the_list_and_the_managers_are_texted(
        services, emulator, roster_path, smtp_server):
    """Alice is the only rep and lets the SLA pass: the lead is not left 'missed' with one email; it
    waits on the unassigned list for the next free rep, and the managers are texted and emailed."""
    from tests.handoff.live import fire, sms_handoff

    roster_path.write_text("""\
managers: [{name: Priya Natarajan, email: priya@example.com, phone: "+15125550190"}]
salespeople:
  - {name: Alice Able, phone: "+15125550101", email: alice@example.com, services: [roofing]}
""")
    lead_id = sms_handoff(services)
    run_jobs(services)
    with services.sessions() as s:
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    fire(services, f"handoff-escalate-{h.id}")
    run_jobs(services)
    with services.sessions() as s:
        assert s.get(Handoff, h.id).status == "missed"
        [waiting] = unassigned_leads(s)
    assert waiting["lead_id"] == lead_id
    assert waiting["reason"].startswith("Alice Able did not acknowledge it within")
    assert [m["body"].split(":")[0] for m in emulator.messages if m["to"] == "+15125550190"] == [
        "Unassigned lead"]
    subjects = [e.content.split(b"Subject: ")[1].split(b":")[0] for e in smtp_server[1].envelopes
                if "priya@example.com" in e.rcpt_tos]
    assert sorted(subjects)[1:] == [b"SLA missed", b"Unassigned lead"], subjects  # who, and what now


def test_a_waiting_lead_who_calls_us_keeps_its_place_on_the_list(services, emulator, roster_path):
    """Nobody on shift: the lead waits. The prospect calls to ask; the questions do not start again
    (that took the lead off the list), and at the shift Alice is offered it."""
    from bot.channels.inbound import inbound

    starts = only_tomorrow_roster(roster_path)
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    verbs = parse_twiml(inbound(services, "+15125550100", "CAcallback"))
    assert [v["verb"] for v in verbs] == ["Say", "Hangup"]
    assert "the next free specialist will call you" in verbs[0]["text"]
    assert drain(services, now=starts - timedelta(minutes=1)) == 0  # a sweep before the shift
    with services.sessions() as s:
        assert s.get(Lead, lead_id).status == "qualified"
        assert [w["lead_id"] for w in unassigned_leads(s)] == [lead_id]
    assert drain(services, now=starts + timedelta(minutes=1)) == 1
