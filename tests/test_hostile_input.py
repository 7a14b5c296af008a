"""Hostile input: control characters, deep JSON, chunked bodies, calendar edges, wrong types, bad methods."""

from __future__ import annotations

import base64
import io
import json

import pytest
from sqlalchemy import select, update

from bot.store.tables import Conversation, Lead
from bot.twilio.twiml_player import CallLeg
from tests.conftest import API_KEY, drain, lead_body
from tests.test_conversation import poster

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def post(client, body, **kw):  # noqa: ANN001, ANN201
    return client.post("/leads", json=body, headers=AUTH, **kw)


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("name", "a\u0000b", "ab"), ("name", "Ada\x1b[31m", "Ada[31m"), ("service", "roof\x07ing", "roofing"),
    ("message", "line one\r\n\tline two\x00", "line one\r\n\tline two"),  # tab and line breaks stay
    ("source", "w\x0beb", "web"), ("consent_text", "I agree\x00", "I agree"), ("name", "bad \ud800 one", "bad  one"),
])
def test_control_characters_are_removed_with_a_warning_on_every_database(client, services, field, value, stored):
    resp = post(client, lead_body(**{field: value}))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert "control characters removed" in resp.get_json()["warnings"][field]
    with services.sessions() as s:
        assert getattr(s.get(Lead, resp.get_json()["id"]), field) == stored


def test_a_name_of_control_characters_only_is_a_422(client):
    resp = post(client, lead_body(name="\x00\x01"))
    assert resp.status_code == 422 and "name" in resp.get_json()["fields"]


def test_a_control_character_already_stored_never_reaches_the_twiml(client, services, emulator):
    """A lead stored before the contract said no (or from another door) still gets a valid call."""
    resp = post(client, lead_body(service="kitchen remodel"))
    with services.sessions() as s:
        s.execute(update(Lead).where(Lead.id == resp.get_json()["id"]).values(name="Ada\x01\x1b\x08 Lovelace"))
        s.commit()
    drain(services)
    call = emulator.of("/Calls.json")[-1]["form"]
    leg = CallLeg(poster(client), services.webhook_token, {"CallSid": "CAx1", "From": call["From"], "To": call["To"]})
    leg.answer(call["Url"])  # parses the TwiML: a raw control character is a ParseError
    assert "Ada" in leg.heard[0]


def test_deeply_nested_json_is_a_400_json_error(client):
    deep = "[" * 40_000
    for url in ("/leads", "/leads/x/outcome"):
        resp = client.post(url, data=deep, headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status_code in (400, 422) and resp.is_json, (url, resp.status_code)
    assert client.post("/leads", data=deep, headers={**AUTH, "Content-Type": "application/json"}).status_code == 400


def test_chunked_body_over_the_limit_is_the_same_413_as_a_sized_one(client):
    body = json.dumps(lead_body(message="x" * 70_000)).encode()
    sized = client.post("/leads", data=body, headers={**AUTH, "Content-Type": "application/json"})
    chunked = client.post("/leads", input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True},
                          headers={**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert sized.status_code == chunked.status_code == 413
    assert chunked.get_json() == sized.get_json()
    small = json.dumps(lead_body()).encode()
    ok = client.post("/leads", input_stream=io.BytesIO(small), environ_overrides={"wsgi.input_terminated": True},
                     headers={**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert ok.status_code == 202


def test_report_window_at_the_calendar_edges_is_a_422_naming_the_parameter(client):
    for query in ("since=0001-01-01T00:00:00%2B01:00", "until=9999-12-31T23:59:59-01:00", "since=yesterday",
                  "since=0001-01-01T00:00:00%2B14:00", "until=%00"):
        resp = client.get(f"/reports/reps?{query}", headers=AUTH)
        assert resp.status_code == 422, (query, resp.get_data(as_text=True))
        assert query.split("=")[0] in resp.get_json()["fields"]
    # The same edges, in UTC, are a fine window.
    resp = client.get("/reports/reps?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z", headers=AUTH)
    assert resp.status_code == 200


def test_control_characters_in_a_path_are_a_404_not_a_500(client):
    for url in ("/leads/a%00b", "/leads/%1b/outcome"):
        resp = client.get(url, headers=AUTH) if "outcome" not in url else client.post(url, json={}, headers=AUTH)
        assert resp.status_code == 404 and resp.is_json


def test_every_bad_field_is_named_in_one_422(client):
    resp = post(client, lead_body(phone="not a phone", consent=False, channel="sms"))
    assert resp.status_code == 422
    assert {"phone", "consent"} <= set(resp.get_json()["fields"])
    resp = post(client, lead_body(name="", channel="email", email=None, consent=False))
    assert {"name", "email"} <= set(resp.get_json()["fields"])


def test_405_keeps_its_allow_header_and_is_json(client):
    resp = client.delete("/leads", headers=AUTH)  # GET /leads is the paged list (#14)
    assert resp.status_code == 405 and resp.is_json
    assert {"GET", "POST"} <= set(resp.headers["Allow"].replace(" ", "").split(","))


def test_idempotency_key_with_control_characters_is_a_400(client):
    resp = client.post("/leads", json=lead_body(), headers={**AUTH, "Idempotency-Key": "a\x01b"})
    assert resp.status_code == 400 and "Idempotency-Key" in resp.get_json()["fields"]


def _sim_call(client, services) -> str:  # noqa: ANN001
    token = base64.b64encode(f"AC{'0' * 32}:{services.webhook_token}".encode()).decode()
    made = client.post("/simulator/api/2010-04-01/Accounts/AC" + "0" * 32 + "/Calls.json",
                       data={"To": "+15125550100", "From": "+15005550006", "Url": "http://leadbot.test/x"},
                       headers={"Authorization": f"Basic {token}"})
    return made.get_json()["sid"]


@pytest.mark.parametrize("body", [[1, 2], {"digits": 5}, {"speech": ["yes"]}, {"answered_by": {"a": 1}}, "text"])
def test_simulator_call_actions_with_wrong_types_are_a_422(client, services, body):
    sid = _sim_call(client, services)
    resp = client.post(f"/simulator/calls/{sid}/input", json=body)
    assert resp.status_code == 422 and resp.is_json


@pytest.mark.parametrize("body", [[1], {"from": 5, "body": "hi"}, {"from": ["+15125550100"], "body": "hi"}, "x"])
def test_simulator_sms_with_wrong_types_is_a_422(client, body):
    resp = client.post("/simulator/sms", json=body)
    assert resp.status_code == 422 and resp.is_json


def test_conversation_state_is_untouched_by_rejected_input(client, services):
    """The rejected leads left nothing behind (no half-written rows)."""
    assert post(client, lead_body(name="\x00\x1b")).status_code == 422
    with services.sessions() as s:
        assert s.scalars(select(Lead)).all() == [] and s.scalars(select(Conversation)).all() == []


def test_outcome_api_names_control_characters_in_source_and_answers(client):
    lead_id = post(client, lead_body(service="kitchen remodel")).get_json()["id"]
    resp = client.post(f"/leads/{lead_id}/outcome", headers=AUTH,
                       json={"source": "ra\x00sa", "answers": {"need": "yes\x00", "budget": {"x": ["\x1b"]}}})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert set(resp.get_json()["fields"]) == {"source", "answers.need", "answers.budget"}
    ok = client.post(f"/leads/{lead_id}/outcome", headers=AUTH, json={"source": "rasa", "answers": {"need": "no"}})
    assert ok.status_code == 200
