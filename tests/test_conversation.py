"""The flow over real webhooks: voice (speech and keys) and SMS reach every outcome; opt-out wins."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from bot.store.tables import Conversation, Lead, OptOut
from bot.twilio.twiml_player import CallLeg, last
from tests.conftest import API_KEY, PUBLIC, drain, lead_body


def poster(client):  # noqa: ANN001, ANN201
    """Post to the app in-process, the way Twilio would over HTTP."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        resp = client.post(url.removeprefix(PUBLIC), data=params, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    return post


def answered_call(client, services, emulator, **lead_overrides) -> tuple[CallLeg, str]:  # noqa: ANN001
    lead_overrides.setdefault("service", "kitchen remodel")  # routes to the default prequal flow
    resp = client.post("/leads", json=lead_body(**lead_overrides), headers={"Authorization": f"Bearer {API_KEY}"})
    lead_id = resp.get_json()["id"]
    drain(services)
    call = emulator.of("/Calls.json")[-1]["form"]
    sid = next(iter(emulator.calls))
    leg = CallLeg(poster(client), services.webhook_token, {"CallSid": sid, "From": call["From"], "To": call["To"]})
    leg.answer(call["Url"])
    return leg, lead_id


def lead_of(services, lead_id: str) -> Lead:  # noqa: ANN001
    with services.sessions() as s:
        return s.get(Lead, lead_id)


def timeline(client, lead_id: str) -> list[dict]:  # noqa: ANN001
    return client.get(f"/leads/{lead_id}", headers={"Authorization": f"Bearer {API_KEY}"}).get_json()["timeline"]


def test_voice_greets_by_name_and_gathers_speech_and_keys(client, services, emulator):
    leg, _ = answered_call(client, services, emulator, service="kitchen remodel")
    assert "Hi Ada" in leg.heard[0] and "kitchen remodel" in leg.heard[0]
    gather = last(leg.verbs, "Gather")
    assert gather["input"] == "dtmf speech" and gather["speechTimeout"] == "auto"
    assert gather["numDigits"] == "1" and gather["actionOnEmptyResult"] == "true"
    assert gather["action"].startswith(PUBLIC + "/twilio/voice/turn/")


def test_voice_not_ready_by_speech_goes_to_nurture(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    leg.reply(speech="Yes.")
    leg.reply(speech="around five grand")
    leg.reply(speech="not for a year")
    leg.reply(digits="1")
    assert leg.ended and "check back when the timing is right" in leg.heard[-1]
    assert last(leg.verbs, "Hangup") is not None
    lead = lead_of(services, lead_id)
    assert lead.status == "nurturing"
    assert lead.answers["need"] == "yes" and lead.answers["authority"] == "me"
    events = timeline(client, lead_id)
    nurture = [e for e in events if e["type"] == "nurture"][0]
    assert nurture["data"]["sequence"] == "not_ready" and "next_follow_up" in nurture["data"]
    assert [e["data"]["step"] for e in events if e["type"] == "answer"] == ["need", "budget", "timing", "authority"]


def test_voice_not_a_fit_by_keypad(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    leg.reply(digits="2")
    assert leg.ended and "not the right fit" in leg.heard[-1]
    lead = lead_of(services, lead_id)
    assert lead.status == "disqualified" and "need" in lead.status_reason


def test_voice_silence_reprompts_then_follows_on_fail(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    leg.reply()  # silence
    assert "didn't catch that" in leg.heard[-1]
    leg.reply(speech="purple elephant")
    leg.reply()
    assert leg.ended and lead_of(services, lead_id).status == "disqualified"


def test_voice_opt_out_word_or_key_wins(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    leg.reply(speech="yes")
    leg.reply(speech="stop calling me")
    assert leg.ended
    assert lead_of(services, lead_id).status == "opted_out"
    with services.sessions() as s:
        assert s.get(OptOut, "+15125550100") is not None


def test_voice_keypad_opt_out(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    leg.reply(digits="9")
    assert leg.ended and lead_of(services, lead_id).status == "opted_out"


def test_voicemail_leaves_message_and_hangs_up(client, services, emulator):
    resp = client.post("/leads", json=lead_body(), headers={"Authorization": f"Bearer {API_KEY}"})
    lead_id = resp.get_json()["id"]
    drain(services)
    call = emulator.of("/Calls.json")[-1]["form"]
    leg = CallLeg(poster(client), services.webhook_token, {"CallSid": "CA9", "To": call["To"]})
    leg.answer(call["Url"], answered_by="machine_end_beep")
    assert leg.ended and "Hi Ada" in leg.heard[0]
    assert lead_of(services, lead_id).status == "no_answer"


def test_conversation_pins_flow_version_across_edits(client, services, emulator, tmp_path):
    leg, lead_id = answered_call(client, services, emulator)
    with services.sessions() as s:
        conv = s.scalars(select(Conversation).where(Conversation.lead_id == lead_id)).one()
    pinned = conv.flow_version
    flows = services.flows
    assert pinned == flows.current(conv.flow_id).version
    # Another process (after a restart) can still rebuild the pinned version from the DB.
    flows._versions.clear()
    leg.reply(speech="yes")
    assert "budget" in leg.heard[-1].lower()


def sms(client, signed, frm: str, body: str) -> str:  # noqa: ANN001
    params = {"From": frm, "To": "+15005550006", "Body": body, "MessageSid": "SM" + uuid.uuid4().hex}  # unique, as Twilio sends
    resp = client.post("/twilio/sms", data=params, headers=signed("/twilio/sms", params))
    assert resp.status_code == 200
    from bot.twilio.twiml_player import parse_twiml

    return "\n".join(v["text"] for v in parse_twiml(resp.get_data(as_text=True)) if v["verb"] == "Message")


def sms_lead(client, services, emulator) -> str:  # noqa: ANN001
    resp = client.post("/leads", json=lead_body(channel="sms", service="solar"), headers={"Authorization": f"Bearer {API_KEY}"})
    drain(services)
    return resp.get_json()["id"]


def test_sms_flow_reaches_nurture(client, services, emulator, signed):
    lead_id = sms_lead(client, services, emulator)
    first = emulator.of("/Messages.json")[0]["form"]
    assert first["To"] == "+15125550100" and "Hi Ada" in first["Body"] and "Reply 1 for" in first["Body"]
    assert "STOP" in first["Body"]
    assert first["StatusCallback"].startswith(PUBLIC + "/twilio/status/sms/")
    assert "budget" in sms(client, signed, "+15125550100", "yeah sure").lower()
    sms(client, signed, "(512) 555-0100", "$5k")
    sms(client, signed, "+15125550100", "next year")
    reply = sms(client, signed, "+15125550100", "my wife decides")
    assert "check back" in reply
    assert lead_of(services, lead_id).status == "nurturing"


def test_sms_flow_not_a_fit(client, services, emulator, signed):
    lead_id = sms_lead(client, services, emulator)
    assert "not the right fit" in sms(client, signed, "+15125550100", "nope")
    lead = lead_of(services, lead_id)
    assert lead.status == "disqualified"


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", " cancel ", "STOPALL", "quit."])
def test_sms_stop_words_always_win(client, services, emulator, signed, word):
    lead_id = sms_lead(client, services, emulator)
    assert sms(client, signed, "+15125550100", word) == ""
    assert lead_of(services, lead_id).status == "opted_out"
    # a new lead from this number is never contacted again
    resp = client.post("/leads", json=lead_body(phone="+15125550100", channel="sms"),
                       headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.get_json()["id"] == lead_id  # de-duplicated within the window, and still opted out
    with services.sessions() as s:
        assert s.get(OptOut, "+15125550100").source == "sms keyword"


def test_sms_from_stranger_gets_no_reply(client, signed):
    assert sms(client, signed, "+15125550177", "hello?") == ""


def test_inbound_call_from_stranger_starts_the_default_flow_as_a_new_lead(client, signed):
    params = {"From": "+15125550177", "CallSid": "CA7"}
    resp = client.post("/twilio/voice", data=params, headers=signed("/twilio/voice", params))
    assert resp.status_code == 200 and "Are you looking for help with a project" in resp.get_data(as_text=True)


def test_inbound_call_from_unreached_prospect_resumes_flow(client, services, emulator, signed):
    resp = client.post("/leads", json=lead_body(), headers={"Authorization": f"Bearer {API_KEY}"})
    drain(services)
    params = {"From": "+15125550100", "CallSid": "CA8"}
    body = client.post("/twilio/voice", data=params, headers=signed("/twilio/voice", params)).get_data(as_text=True)
    assert "Hi Ada" in body and "<Gather" in body
    assert lead_of(services, resp.get_json()["id"]).status == "in_conversation"


def test_sms_qualified_ready_is_told_a_specialist_will_call(client, services, emulator, signed):
    lead_id = sms_lead(client, services, emulator)
    for body in ["yes", "10k", "asap"]:
        sms(client, signed, "+15125550100", body)
    reply = sms(client, signed, "+15125550100", "1")
    assert "specialist will call you" in reply and "hold" not in reply.lower()
    assert lead_of(services, lead_id).status in ("qualified", "handed_off")
