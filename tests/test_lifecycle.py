"""Reaching the leads who don't pick up: the cadence, voicemail, callbacks, resumes and nurture, driven
by a moved clock (time-travel by scheduling, never sleeping) through the real webhooks and RQ jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import PUBLIC, lead_body, make_settings
from tests.lifecycle_kit import events, lead_row, leg_for, moved_clock, sms_in, status, texts, work
from tests.procs import free_port
from tests.timemachine import CHICAGO, TimeMachine, a_weekday_at


@pytest.fixture
def tm(tmp_path, monkeypatch, db_url, services):  # noqa: ANN001, ANN201
    """The clock moved to a Tuesday 14:00 in Austin, for the app and its jobs."""
    yield from moved_clock(tmp_path, monkeypatch, db_url, services)


@pytest.fixture
def smtp():  # noqa: ANN201
    """A real SMTP server (aiosmtpd) that the app's SMTP_URL points at."""
    from aiosmtpd.controller import Controller

    from tests.handoff.conftest import Inbox

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


@pytest.fixture
def settings(tmp_path, db_url, redis_url, emulator, smtp):  # noqa: ANN001, ANN201
    """Real calling hours (8:00-21:00 in the lead's zone): the moved clock decides. Mail goes by SMTP."""
    return make_settings(
        tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS="08:00-21:00", SMTP_URL=smtp.url
    )


def post_lead(client, auth, **fields) -> str:  # noqa: ANN001, ANN003
    resp = client.post("/leads", json=lead_body(**fields), headers=auth)
    assert resp.status_code == 202, resp.text
    return resp.get_json()["id"]


def travel_and_run(tm: TimeMachine, services, to: datetime) -> list[str]:  # noqa: ANN001
    tm.travel(to)
    due = tm.release()
    work(services)
    return due


def local(at: datetime) -> str:
    return at.astimezone(CHICAGO).strftime("%a %H:%M")


def test_no_answer_lead_gets_the_whole_cadence_then_the_email(client, auth, services, emulator, tm, smtp):
    start = tm.now()
    lead_id = post_lead(client, auth)
    work(services)
    seen: list[str] = []
    calls = 0
    for _ in range(20):
        if len(emulator.of("/Calls.json")) > calls:  # a new call went out: nobody answers it
            calls = len(emulator.of("/Calls.json"))
            status(*leg_for(client, services, emulator), "no-answer")
        planned = tm.planned(lead_id)
        if not planned:
            break
        touch = planned[0]
        seen.append(f"{touch.kind} {local(touch.due_at.replace(tzinfo=UTC))}")
        travel_and_run(tm, services, touch.due_at.replace(tzinfo=UTC))
    day1 = (start + timedelta(days=1)).astimezone(CHICAGO).strftime("%a")
    day2 = (start + timedelta(days=2)).astimezone(CHICAGO).strftime("%a")
    # +2 min, a text at +3 min, +20 min, +2 h, the next morning, the next afternoon (Austin time); then email.
    assert seen[:6] == [
        "retry Tue 14:02",
        "text Tue 14:03",
        "retry Tue 14:20",
        "retry Tue 16:00",
        f"retry {day1} 10:00",
        f"retry {day2} 15:00",
    ], seen
    assert len(seen) == 7 and seen[6].startswith("email")
    assert len(emulator.of("/Calls.json")) == 6  # six calls at most
    assert texts(emulator) == [
        "We just tried to call about your roofing request; reply CALL and we'll call right "
        "back, or STOP to opt out"
    ]
    mail, managers = sorted(smtp.envelopes, key=lambda e: len(e.rcpt_tos))
    # The email last, to the address on file, over SMTP
    assert mail.rcpt_tos == ["ada@example.com"] and b"we tried to reach you by phone" in mail.content
    # and no silent ending: the managers hear that the cadence ran out.
    assert sorted(managers.rcpt_tos) == ["priya.natarajan@example.com", "tom.becker@example.com"]
    subject = b"Subject: Unreachable lead: Ada Lovelace (roofing) - no answer after 6 call(s)"
    assert subject in managers.content
    view = client.get(f"/leads/{lead_id}", headers=auth).get_json()
    assert view["status"] == "no_answer" and view["status_reason"] == "no answer after 6 call(s)"
    told = [e["data"] for e in view["timeline"] if e["type"] == "handoff_email_sent"]
    assert [(d["kind"], d["to"]) for d in told] == [
        ("no_answer", "priya.natarajan@example.com, tom.becker@example.com")
    ]
    from handoff.jobs import report_unreachable

    assert report_unreachable(lead_id) == "skipped"  # once per cadence
    assert [t["status"] for t in view["touches"]] == ["sent"] * 7
    assert len([e for e in view["timeline"] if e["type"] == "touch_planned"]) == 7


def test_busy_waits_longer_and_an_answer_cancels_what_was_planned(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    status(leg, form, "busy")
    assert local(tm.next_due(lead_id)) == "Tue 14:05"  # busy: at least 5 minutes, not 2
    travel_and_run(tm, services, tm.next_due(lead_id))
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    assert "Ada" in " ".join(leg.heard)
    assert tm.planned(lead_id) == []
    assert lead_row(services, lead_id).status == "in_conversation"


def test_machine_gets_the_flows_voicemail_then_the_text_within_a_minute(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    assert form["MachineDetection"] == "DetectMessageEnd" and form["AsyncAmd"] == "true"
    leg.answer(form["Url"], answered_by="")  # async AMD: the greeting plays at once
    amd_at = tm.now()
    leg.amd(form["AsyncAmdStatusCallback"], "machine_end_beep")
    redirect = emulator.of(f"/Calls/{leg.params['CallSid']}.json")
    assert len(redirect) == 1 and redirect[0]["form"]["Url"].endswith(
        "/voicemail/" + form["Url"].rsplit("/", 1)[1]
    )
    leg.request(redirect[0]["form"]["Url"])
    said = " ".join(leg.heard)
    assert "Hi Ada, this is the team you contacted about your roof" in said and "(500) 555-0006" in said
    status(leg, form, "completed")
    due = tm.next_due(lead_id)
    assert timedelta(0) < due - amd_at <= timedelta(minutes=1)
    travel_and_run(tm, services, due)
    assert texts(emulator) == [
        "We just tried to call about your roofing request; reply CALL and we'll call right "
        "back, or STOP to opt out"
    ]
    # The cadence goes on with calls; its own "we just called" text is not sent twice.
    assert [(t.kind, t.channel) for t in tm.planned(lead_id)] == [("retry", "call")]


def test_a_person_taken_for_a_machine_keeps_talking(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"], answered_by="")
    leg.amd(form["AsyncAmdStatusCallback"], "machine_end_other")
    leg.request(emulator.of(f"/Calls/{leg.params['CallSid']}.json")[0]["form"]["Url"])
    assert not leg.ended  # the voicemail listens: no hang-up on a person
    leg.reply(speech="hello? yes, I'm here")
    said = " ".join(leg.heard)
    assert "Sorry, I thought I'd reached your voicemail" in said
    assert lead_row(services, lead_id).status == "in_conversation"
    assert tm.planned(lead_id) == []  # the text and the retry are cancelled
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")] == [
        "answered: a person, not a machine"
    ] * 2
    leg.reply(speech="no, no leak")  # the flow goes on: the next question
    assert not leg.ended and [d.get("step") for t, d in events(services, lead_id) if t == "answer"] == [
        "leak"
    ]


def test_opt_out_blocks_a_pending_retry_voicemail_text_and_nurture_step(
    client, auth, services, emulator, tm, signed
):
    """In-process and quick; the three-requests case through gunicorn is tests/test_optout_e2e.py."""
    from bot.channels import nurture

    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"], answered_by="")
    leg.amd(form["AsyncAmdStatusCallback"], "machine_end_beep")  # plans the reminder text and a retry
    with services.sessions() as s:  # and a nurture step for the same lead
        nurture.enter(services, s, lead_row(services, lead_id), "roofing_later")
        s.commit()
    pending = {t.kind for t in tm.planned(lead_id)}
    assert {"retry", "voicemail_text", "nurture"} <= pending
    sms_in(client, services, signed, "STOP")
    blocked = events(services, lead_id, "touch_blocked")
    assert {d["kind"] for _, d in blocked} == pending
    assert {d["reason"] for _, d in blocked} == {"blocked: opted out"}
    calls, msgs = len(emulator.of("/Calls.json")), len(emulator.of("/Messages.json"))
    travel_and_run(tm, services, tm.now() + timedelta(days=40))
    assert (len(emulator.of("/Calls.json")), len(emulator.of("/Messages.json"))) == (calls, msgs)


def test_a_due_touch_to_an_opted_out_number_is_blocked_by_the_gate(client, auth, services, emulator, tm):
    from bot.compliance import gate

    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    status(leg, form, "no-answer")
    with services.sessions() as s:  # an opt-out recorded elsewhere (a DNC import), not through the lead
        gate.opt_out(s, "+15125550100", "dnc import")
        s.commit()
    travel_and_run(tm, services, tm.next_due(lead_id))
    assert len(emulator.of("/Calls.json")) == 1
    assert [d["reason"] for _, d in events(services, lead_id, "touch_blocked")] == ["blocked: opted out"]


def test_call_reply_gets_an_instant_callback(client, auth, services, emulator, tm, signed):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    status(leg, form, "no-answer")
    assert "Calling you now!" in sms_in(client, services, signed, "Call me")
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 2
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")] == [
        "the lead asked for a call"
    ]


def test_call_reply_at_night_is_called_back_when_the_window_opens(
    client, auth, services, emulator, tm, signed
):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    tm.travel(a_weekday_at(22, 30))
    assert "We'll call you at 8:00 AM on Wednesday" in sms_in(client, services, signed, "CALL")
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 1  # not at 22:30
    assert local(tm.next_due(lead_id)) == "Wed 08:00"


def test_cut_off_call_is_retried_and_resumes_at_its_step(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    leg.reply(speech="no")  # first question answered; the line drops during the second
    second_question = leg.heard[-1]
    status(leg, form, "completed")
    got = lead_row(services, lead_id)
    assert got.status == "no_answer" and got.status_reason.startswith("cut off at step")
    travel_and_run(tm, services, tm.next_due(lead_id))
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    assert leg.heard[0] == "Hi Ada, we got cut off earlier. Let's pick up where we left off."
    assert leg.heard[1] == second_question


def test_known_lead_calling_back_is_greeted_by_name_and_resumes(client, auth, services, emulator, tm, signed):
    lead_id = post_lead(client, auth)
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    leg.reply(speech="no")
    second_question = leg.heard[-1]
    status(leg, form, "completed")
    from bot.twilio.twiml_player import CallLeg
    from tests.lifecycle_kit import poster

    caller = CallLeg(
        poster(client),
        services.webhook_token,
        {"CallSid": "CA" + "9" * 32, "From": "+15125550100", "To": services.settings.caller_id},
    )
    caller.request(PUBLIC + "/twilio/voice")
    assert caller.heard[0] == "Hi Ada, thanks for calling back. Let's pick up where we left off."
    assert caller.heard[1] == second_question
    assert [t.kind for t in tm.planned(lead_id)] == ["call_watch"]  # the retry is off: they called us
    assert lead_row(services, lead_id).status == "in_conversation"


def test_unknown_caller_becomes_a_new_inbound_lead(client, services, tm, auth):
    from bot.twilio.twiml_player import CallLeg
    from tests.lifecycle_kit import poster

    caller = CallLeg(
        poster(client),
        services.webhook_token,
        {"CallSid": "CA" + "8" * 32, "From": "+15125550199", "To": services.settings.caller_id},
    )
    caller.request(PUBLIC + "/twilio/voice")
    assert not caller.ended and caller.heard  # the default flow's first question
    from sqlalchemy import select

    from bot.store.tables import Lead

    with services.sessions() as s:
        lead = s.scalar(select(Lead).where(Lead.phone == "+15125550199"))
    assert lead.source == "inbound-call" and lead.status == "in_conversation"


def test_new_submission_from_an_unreached_lead_calls_again_at_once(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    resp = client.post("/leads", json=lead_body(), headers=auth)
    assert resp.get_json() == {"id": lead_id, "status": "queued", "duplicate": True}
    work(services)
    assert len(emulator.of("/Calls.json")) == 2
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")] == ["new submission"]


def test_nurture_drip_sends_step_by_step_then_ready_calls_back(
    client, auth, services, emulator, tm, signed, smtp
):
    lead_id = post_lead(client, auth, service="kitchen remodel")
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    for answer in (
        {"digits": "1"},
        {"speech": "five grand"},
        {"speech": "in the spring"},
        {"speech": "I need to ask my wife"},
    ):
        leg.reply(**answer)
    status(leg, form, "completed")
    assert lead_row(services, lead_id).status == "nurturing"
    view = client.get(f"/leads/{lead_id}", headers=auth).get_json()
    assert view["nurture"]["sequence"] == "not_ready" and view["nurture"]["sent"] == []
    assert view["nurture"]["next"]["step"] == "check_in"
    entered = tm.now()
    travel_and_run(tm, services, entered + timedelta(days=3, minutes=1))
    assert texts(emulator)[-1].startswith("Hi Ada, just checking in about your kitchen remodel")
    view = client.get(f"/leads/{lead_id}", headers=auth).get_json()
    assert [s["step"] for s in view["nurture"]["sent"]] == ["check_in"]
    assert view["nurture"]["next"]["step"] == "follow_up"
    travel_and_run(tm, services, entered + timedelta(days=14, minutes=1))
    tm.release()
    work(services)  # the managers' email, queued when the last step went
    [mail] = [e for e in smtp.envelopes if e.rcpt_tos == ["ada@example.com"]]
    assert b"Still thinking it over, Ada?" in mail.content
    # No reply to the whole drip: the lead is not left silently 'nurturing'; the managers hear of it.
    [managers] = [e for e in smtp.envelopes if e is not mail]
    assert b"no reply to the nurture drip" in managers.content
    assert lead_row(services, lead_id).status_reason == "the drip 'not_ready' finished (2 sent) with no reply"
    travel_and_run(tm, services, entered + timedelta(days=60))
    assert len(smtp.envelopes) == 2 and len(texts(emulator)) == 1  # each step once, the managers once
    assert "Calling you now!" in sms_in(client, services, signed, "yes, now")
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 2
    assert lead_row(services, lead_id).status == "contacting"


def test_two_failed_calls_switch_the_cadence_to_texts(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "failed")
    travel_and_run(tm, services, tm.next_due(lead_id))
    status(*leg_for(client, services, emulator), "failed")
    assert [d["reason"] for _, d in events(services, lead_id, "channel_switched")] == [
        "2 failed calls in a row"
    ]
    for _ in range(2):  # the text at +3 min, then the +20 min touch, as a text now
        travel_and_run(tm, services, tm.next_due(lead_id))
    assert len(emulator.of("/Calls.json")) == 2 and len(texts(emulator)) == 2


def test_a_number_that_cannot_take_texts_gets_a_call_instead(client, auth, services, emulator, tm):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    travel_and_run(tm, services, tm.next_due(lead_id))  # the +2 min call
    status(*leg_for(client, services, emulator), "no-answer")
    emulator.script("message", (400, {"code": 21614, "message": "not a mobile number", "status": 400}))
    travel_and_run(tm, services, tm.next_due(lead_id))  # the +3 min text fails: 21614
    assert [d["reason"] for _, d in events(services, lead_id, "touch_failed")][0].startswith(
        "'To' number is not a mobile number (Twilio 400 error 21614"
    )
    tm.release()
    work(services)
    assert len(emulator.of("/Calls.json")) == 3  # a call in place of the text
    planned = tm.planned(lead_id)
    travel_and_run(tm, services, planned[0].due_at.replace(tzinfo=UTC))
    assert len(emulator.of("/Messages.json")) == 1  # no text is tried again


def test_handed_off_lead_calling_back_is_put_through_to_its_rep(client, auth, services, tm):
    from bot.store.handoff_tables import Handoff
    from bot.store.tables import Lead
    from bot.twilio.twiml_player import CallLeg
    from handoff.roster_cache import roster_for
    from tests.lifecycle_kit import poster

    lead_id = post_lead(client, auth)
    rep = roster_for(services).salespeople[0]
    with services.sessions() as s:
        s.get_one(Lead, lead_id).status = "handed_off"
        s.add(Handoff(lead_id=lead_id, rep_name=rep.name, rep_phone=rep.phone, mode="sms", status="acked"))
        s.commit()
    caller = CallLeg(
        poster(client),
        services.webhook_token,
        {"CallSid": "CA" + "7" * 32, "From": "+15125550100", "To": services.settings.caller_id},
    )
    verbs = caller.request(PUBLIC + "/twilio/voice")
    first = rep.name.split(" ")[0]
    assert caller.heard[0] == f"Hi Ada, thanks for calling back. Let me put you through to {first}."
    assert any(v["verb"] == "Dial" for v in verbs)  # on hold in the transfer conference while the rep is rung
    assert [d["rep"] for _, d in events(services, lead_id, "inbound_to_rep")] == [rep.name]


def test_a_new_request_after_the_dedupe_window_stops_the_old_leads_touches(client, auth, services, emulator,
                                                                           tm):
    lead_id = post_lead(client, auth)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    tm.travel(tm.now() + timedelta(minutes=11))  # past DEDUPE_WINDOW_SECONDS: a lead of its own
    new_id = post_lead(client, auth)
    assert new_id != lead_id
    tm.release()
    work(services)
    assert [f["form"]["Url"].rsplit("/", 2)[1] for f in emulator.of("/Calls.json")] == ["answer", "answer"]
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")] == ["new submission"]
