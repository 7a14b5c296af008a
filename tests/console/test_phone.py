"""Try it: the console relays the phones' actions to the simulator for a logged-in editor on any address."""

from __future__ import annotations

import base64

from tests.console.conftest import csrf_of, login, make_user

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}  # a staff member's own computer, not this machine
API = "/simulator/api/2010-04-01/Accounts/AC" + "0" * 32


def remote_client(app, services, email: str, role: str):  # noqa: ANN001, ANN201
    """A test client from a non-loopback address, logged in with `role`; .csrf holds its token."""
    client = app.test_client()
    client.environ_base.update(REMOTE)
    assert login(client, make_user(services, email, role)).status_code == 302
    client.csrf = csrf_of(client.get("/console/").get_data(as_text=True))
    return client


def simulated_call(client, services) -> str:  # noqa: ANN001
    """A call the bot placed, as the simulator records it (its REST API, with the token as Twilio's)."""
    auth = base64.b64encode(f"AC{'0' * 32}:{services.webhook_token}".encode()).decode()
    made = client.post(API + "/Calls.json", headers={"Authorization": "Basic " + auth},
                       data={"To": "+15125550142", "From": "+15005550006", "Url": "http://leadbot.test/x"})
    assert made.status_code == 201
    return made.get_json()["sid"]


def test_editor_on_another_address_plays_the_phone_but_the_simulator_still_refuses_strangers(app, services):
    editor = remote_client(app, services, "ed@example.com", "editor")
    assert editor.get("/simulator/state").status_code == 403  # the simulator itself stays shut
    sid = simulated_call(editor, services)
    headers = {"X-CSRF-Token": editor.csrf}
    state = editor.get("/console/try/state")
    assert state.status_code == 200 and [c["sid"] for c in state.get_json()["calls"]] == [sid]
    hung_up = editor.post(f"/console/try/calls/{sid}/hangup", json={}, headers=headers)
    assert hung_up.status_code == 200 and hung_up.get_json()["status"] == "completed"
    texted = editor.post("/console/try/sms", json={"from": "+15125550142", "body": "hello"}, headers=headers)
    assert texted.status_code == 200 and texted.get_json()["ok"] is True
    bodies = [m["body"] for m in editor.get("/console/try/state").get_json()["messages"]]
    assert "hello" in bodies
    # The simulator's own validation answers through the relay, naming the field.
    bad = editor.post("/console/try/sms", json={"from": "+15125550142", "body": 5}, headers=headers)
    assert bad.status_code == 422 and "body" in bad.get_json()["fields"]
    explode = editor.post(f"/console/try/calls/{sid}/explode", json={}, headers=headers)
    assert explode.get_json()["fields"] == {"action": "one of answer, input, hangup"}
    odd = editor.post("/console/try/calls/CA1%3Fx%3D1/answer", json={}, headers=headers)
    assert odd.status_code == 422 and "sid" in odd.get_json()["fields"]


def test_the_relay_wants_a_session_the_csrf_token_and_the_editor_role(app, services):
    anonymous = app.test_client()
    anonymous.environ_base.update(REMOTE)
    assert anonymous.get("/simulator/state").status_code == 403
    assert anonymous.get("/console/try/state", headers={"X-Requested-With": "fetch"}).status_code == 401
    editor = remote_client(app, services, "ed@example.com", "editor")
    sid = simulated_call(editor, services)
    assert editor.post(f"/console/try/calls/{sid}/hangup", json={}).status_code == 400  # no CSRF token
    assert editor.get("/console/try/state").get_json()["calls"][0]["status"] == "queued"
    manager = remote_client(app, services, "mgr@example.com", "manager")
    assert manager.get("/console/try/state").status_code == 403
    headers = {"X-CSRF-Token": manager.csrf}
    assert manager.post(f"/console/try/calls/{sid}/hangup", json={}, headers=headers).status_code == 403


def test_start_a_test_lead_makes_one_lead_and_calls_the_test_phone(staff_client, services, emulator):
    """The try page's button goes through intake's create_lead (no browser needed to catch a break)."""
    from sqlalchemy import select

    from bot.store.tables import Lead
    from tests.conftest import drain

    resp = staff_client.post("/console/try/lead", data={"csrf_token": staff_client.csrf, "name": "Test Lead",
                                                        "phone": "+15125550142", "service": "roofing"})
    assert resp.status_code == 302 and "lead=" in resp.headers["Location"], resp.get_data(as_text=True)[:500]
    with services.sessions() as s:
        [lead] = s.scalars(select(Lead)).all()
    assert lead.source == "console test"
    drain(services)
    assert [c["form"]["To"] for c in emulator.of("/Calls.json")] == ["+15125550142"]
