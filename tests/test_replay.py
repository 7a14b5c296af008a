"""Every Twilio webhook, sent twice exactly as signed, has one effect and gives the same answer."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from bot.store.handoff_tables import Handoff, Transfer
from bot.store.tables import Attempt, Conversation, Event, Lead
from tests.conftest import API_KEY, PUBLIC, drain, lead_body
from tests.test_conversation import answered_call, sms_lead

TOKEN_HEADER = "I-Twilio-Idempotency-Token"  # Twilio's, the same on every retry of one webhook request


def world(services) -> tuple:  # noqa: ANN001
    """Everything a webhook could change, counted."""
    with services.sessions() as s:
        counts = tuple(s.scalar(select(func.count()).select_from(t)) for t in (Event, Conversation, Handoff, Transfer))
        states = tuple(s.execute(select(Lead.id, Lead.status, Lead.answers).order_by(Lead.id)).all())
        convs = tuple(s.execute(select(Conversation.id, Conversation.open, Conversation.state)
                                .order_by(Conversation.id)).all())
    return counts, states, str(convs)


def send_twice(client, services, path: str, params: dict[str, str], token: bool = True):  # noqa: ANN001, ANN201
    """The same signed request twice; the second must change nothing and answer the same."""
    from bot.twilio.signature import sign

    headers = {"X-Twilio-Signature": sign(services.webhook_token, PUBLIC + path, params)}
    if token:
        headers[TOKEN_HEADER] = str(uuid.uuid4())
    first = client.post(path, data=params, headers=headers)
    after_first = world(services)
    second = client.post(path, data=params, headers=headers)
    assert first.status_code == second.status_code and first.status_code < 300, first.get_data(as_text=True)
    assert world(services) == after_first
    return first, second


def test_answer_replayed_without_a_token_starts_one_conversation(client, services, emulator):
    resp = client.post("/leads", json=lead_body(service="kitchen remodel"), headers={"Authorization": f"Bearer {API_KEY}"})
    drain(services)
    call = emulator.of("/Calls.json")[-1]["form"]
    path = call["Url"].removeprefix(PUBLIC)
    params = {"CallSid": "CAreplay1", "From": call["From"], "To": call["To"], "CallStatus": "in-progress"}
    first, second = send_twice(client, services, path, params, token=False)
    assert first.get_data(as_text=True).count("<Gather") == second.get_data(as_text=True).count("<Gather") == 1
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.lead_id == resp.get_json()["id"])) == 1


@pytest.mark.parametrize("token", [True, False])
def test_a_voice_turn_replayed_is_answered_once(client, services, emulator, token):
    leg, lead_id = answered_call(client, services, emulator)
    gather = [v for v in leg.verbs if v["verb"] == "Gather"][-1]
    path = gather["action"].removeprefix(PUBLIC)
    params = {**leg.params, "SpeechResult": "yes", "Confidence": "0.9"}
    first, second = send_twice(client, services, path, params, token=token)
    assert "budget" in first.get_data(as_text=True).lower() and "budget" in second.get_data(as_text=True).lower()
    with services.sessions() as s:
        answers = s.scalars(select(Event).where(Event.lead_id == lead_id, Event.type == "answer")).all()
    assert [a.data["step"] for a in answers] == ["need"]


def test_an_inbound_call_replayed_starts_one_conversation(client, services, emulator):
    answered_call(client, services, emulator)
    send_twice(client, services, "/twilio/voice", {"CallSid": "CAin1", "From": "+15125550100", "To": "+15005550006"},
               token=False)


@pytest.mark.parametrize("token", [True, False])
def test_a_text_replayed_is_one_turn(client, services, emulator, token):
    sms_lead(client, services, emulator)
    params = {"From": "+15125550100", "To": "+15005550006", "Body": "yes", "MessageSid": "SM" + uuid.uuid4().hex}
    first, second = send_twice(client, services, "/twilio/sms", params, token=token)
    assert first.get_data() == second.get_data() and b"budget" in first.get_data().lower()


def test_status_callbacks_replayed_change_nothing(client, services, emulator):
    leg, lead_id = answered_call(client, services, emulator)
    with services.sessions() as s:
        attempt_id = s.scalars(select(Attempt.id).where(Attempt.lead_id == lead_id)).one()
    send_twice(client, services, f"/twilio/status/call/{attempt_id}", {**leg.params, "CallStatus": "completed",
                                                                       "CallDuration": "30"})
