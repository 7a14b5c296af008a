"""Status callbacks: signed, idempotent, forward-only."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.tables import Attempt, Event, Lead
from tests.conftest import API_KEY, drain, lead_body


def placed_attempt(client, services) -> Attempt:  # noqa: ANN001
    client.post("/leads", json=lead_body(), headers={"Authorization": f"Bearer {API_KEY}"})
    drain(services)
    with services.sessions() as s:
        return s.scalars(select(Attempt)).one()


def callback(client, signed, attempt_id: str, status: str, **extra: str):  # noqa: ANN001, ANN201
    path = f"/twilio/status/call/{attempt_id}"
    params = {"CallSid": "CA1", "CallStatus": status, **extra}
    return client.post(path, data=params, headers=signed(path, params))


def call_events(services, lead_id: str) -> list[str]:  # noqa: ANN001
    with services.sessions() as s:
        return [e.type for e in s.scalars(select(Event).where(Event.lead_id == lead_id, Event.type.like("call.%"))
                                          .order_by(Event.id))]


def test_statuses_move_forward_only_and_duplicates_are_ignored(client, services, signed):
    a = placed_attempt(client, services)
    for status in ["initiated", "ringing", "ringing", "initiated", "in-progress", "ringing", "completed",
                   "in-progress", "completed", "no-answer"]:
        assert callback(client, signed, a.id, status).status_code == 204
    assert call_events(services, a.lead_id) == ["call.initiated", "call.ringing", "call.in-progress",
                                                "call.completed"]
    with services.sessions() as s:
        assert s.get(Attempt, a.id).call_status == "completed"


def test_out_of_order_arrival_keeps_latest(client, services, signed):
    a = placed_attempt(client, services)
    callback(client, signed, a.id, "completed", CallDuration="42")
    callback(client, signed, a.id, "ringing")
    assert call_events(services, a.lead_id) == ["call.completed"]
    with services.sessions() as s:
        ev = s.scalars(select(Event).where(Event.type == "call.completed")).one()
    assert ev.data["duration"] == "42"


def test_no_answer_marks_lead(client, services, signed):
    a = placed_attempt(client, services)
    callback(client, signed, a.id, "no-answer")
    with services.sessions() as s:
        lead = s.get(Lead, a.lead_id)
    assert lead.status == "no_answer" and lead.status_reason == "call no-answer"


def test_forged_signature_is_403_and_changes_nothing(client, services, signed):
    a = placed_attempt(client, services)
    path = f"/twilio/status/call/{a.id}"
    params = {"CallSid": "CA1", "CallStatus": "completed"}
    good = signed(path, params)
    for headers in ({}, {"X-Twilio-Signature": "bm9wZQ=="}, good):
        tampered = {**params, "CallStatus": "busy"} if headers is good else params
        resp = client.post(path, data=tampered, headers=headers)
        assert resp.status_code == 403 and "X-Twilio-Signature" in resp.get_json()["error"]
    # signed for another path (replay against a different attempt)
    assert client.post("/twilio/status/call/other", data=params, headers=good).status_code == 403
    assert call_events(services, a.lead_id) == []


def test_signature_uses_public_base_url_not_request_url(client, services):
    from bot.twilio.signature import sign

    a = placed_attempt(client, services)
    path = f"/twilio/status/call/{a.id}"
    params = {"CallSid": "CA1", "CallStatus": "ringing"}
    # Signed for the URL the proxy forwarded to (localhost) instead of PUBLIC_BASE_URL: rejected.
    wrong = sign(services.webhook_token, "http://localhost" + path, params)
    assert client.post(path, data=params, headers={"X-Twilio-Signature": wrong}).status_code == 403


def test_every_twilio_route_rejects_unsigned_posts(client):
    for path in ["/twilio/sms", "/twilio/voice", "/twilio/voice/answer/x", "/twilio/voice/turn/x",
                 "/twilio/status/call/x", "/twilio/status/sms/x"]:
        resp = client.post(path, data={"From": "+15125550100", "Body": "hi"})
        assert resp.status_code == 403, path
