"""A call to our number that ends mid-questions is a cut-off call: nothing posts when the caller hangs
up during a Gather, so a watch (or the number's status callback) closes it and the call back comes."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.callwatch import WATCH_AFTER
from bot.twilio.twiml_player import CallLeg
from tests.conftest import PUBLIC
from tests.lifecycle_kit import events, lead_row, leg_for, poster, status
from tests.test_lifecycle import post_lead, travel_and_run
from tests.test_lifecycle import settings, smtp, tm  # noqa: F401 - real calling hours, SMTP, moved clock
from tests.test_replay import send_twice

CALLER_SID = "CA" + "7" * 32


def calls_us(client, services, phone: str = "+15125550100") -> CallLeg:  # noqa: ANN001
    caller = CallLeg(poster(client), services.webhook_token,
                     {"CallSid": CALLER_SID, "From": phone, "To": services.settings.caller_id})
    caller.request(PUBLIC + "/twilio/voice")
    return caller


def unanswered_lead_calls_back_and_hangs_up(client, auth, services, emulator) -> tuple[str, str]:  # noqa: ANN001
    """A lead missed our call, calls back, answers one question and hangs up: nothing is posted."""
    lead_id = post_lead(client, auth)
    from tests.lifecycle_kit import work

    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    caller = calls_us(client, services)
    caller.reply(speech="no")
    return lead_id, caller.heard[-1]


def test_a_call_back_that_hangs_up_mid_questions_is_cut_off_and_called_back(client, auth, services, emulator,
                                                                           tm):
    lead_id, second_question = unanswered_lead_calls_back_and_hangs_up(client, auth, services, emulator)
    assert lead_row(services, lead_id).status == "in_conversation"
    travel_and_run(tm, services, tm.now() + WATCH_AFTER - timedelta(seconds=30))
    assert lead_row(services, lead_id).status == "in_conversation"  # not yet: a call may still be live
    travel_and_run(tm, services, tm.now() + timedelta(minutes=1))
    lead = lead_row(services, lead_id)
    assert lead.status == "no_answer" and lead.status_reason.startswith("cut off at step")
    assert "retry" in [t.kind for t in tm.planned(lead_id)]  # the call back, by the cadence
    travel_and_run(tm, services, tm.now())  # the cadence's text, due already
    travel_and_run(tm, services, tm.next_due(lead_id))
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    assert leg.heard[0] == "Hi Ada, we got cut off earlier. Let's pick up where we left off."
    assert leg.heard[1] == second_question


def test_an_unknown_caller_who_hangs_up_is_called_back(client, services, tm):
    caller = calls_us(client, services, phone="+15125550199")
    assert caller.heard and not caller.ended
    travel_and_run(tm, services, tm.now() + WATCH_AFTER + timedelta(minutes=1))
    from sqlalchemy import select

    from bot.store.tables import Lead

    with services.sessions() as s:
        lead = s.scalar(select(Lead).where(Lead.phone == "+15125550199"))
    assert lead.source == "inbound-call" and lead.status == "no_answer"
    assert "retry" in [t.kind for t in tm.planned(lead.id)]


def test_a_caller_still_answering_is_not_cut_off(client, auth, services, emulator, tm):
    lead_id, _ = unanswered_lead_calls_back_and_hangs_up(client, auth, services, emulator)
    travel_and_run(tm, services, tm.now() + WATCH_AFTER - timedelta(minutes=1))
    caller = CallLeg(poster(client), services.webhook_token,
                     {"CallSid": CALLER_SID, "From": "+15125550100", "To": services.settings.caller_id})
    with services.sessions() as s:
        from sqlalchemy import select

        from bot.store.tables import Conversation

        conv = s.scalar(select(Conversation).where(Conversation.call_sid == CALLER_SID))
    caller.request(f"{PUBLIC}/twilio/voice/turn/{conv.id}?t={conv.state['turns']}", {"SpeechResult": "yes"})
    travel_and_run(tm, services, tm.now() + timedelta(minutes=2))  # the first watch: it moved on
    assert lead_row(services, lead_id).status == "in_conversation"
    [watch] = tm.planned(lead_id)  # watching the new turn, from when it was taken
    assert watch.kind == "call_watch" and watch.step == str(conv.state["turns"] + 1)
    travel_and_run(tm, services, tm.now() + WATCH_AFTER - timedelta(minutes=2, seconds=30))
    assert lead_row(services, lead_id).status == "in_conversation"
    travel_and_run(tm, services, tm.now() + timedelta(minutes=1))
    assert lead_row(services, lead_id).status == "no_answer"


def test_the_numbers_status_callback_cuts_it_off_at_once_and_once(client, auth, services, emulator, tm):
    lead_id, _ = unanswered_lead_calls_back_and_hangs_up(client, auth, services, emulator)
    params = {"CallSid": CALLER_SID, "CallStatus": "completed", "From": "+15125550100",
              "To": services.settings.caller_id}
    send_twice(client, services, "/twilio/voice/status", params)
    assert lead_row(services, lead_id).status == "no_answer"
    assert len(events(services, lead_id, "cut_off")) == 1
    assert [t.kind for t in tm.planned(lead_id)] == ["text", "retry"]  # the cadence goes on; the watch is off
