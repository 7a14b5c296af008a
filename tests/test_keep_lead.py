"""A good lead is not thrown away for a bad secondary field, through real gunicorn and worker processes."""

from __future__ import annotations

import requests

from tests.conftest import API_KEY, lead_body
from tests.procs import Stack
from tests.test_e2e import stack_env

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_call_and_sms_leads_with_a_bad_email_or_long_message_are_kept_and_contacted(tmp_path, db_url,
                                                                                       redis_url, emulator):
    stack = Stack(stack_env(tmp_path, db_url, redis_url, emulator), tmp_path).start()
    try:
        def post(**fields: object) -> requests.Response:
            return requests.post(stack.url + "/leads", json=lead_body(**fields), headers=AUTH, timeout=5)

        called = post(phone="+1 512 555 0141", email="jo@gmail", message="m" * 2500, language="fr")
        texted = post(phone="+1 512 555 0142", email="morgan@example.test", channel="sms")
        assert called.status_code == 202 and texted.status_code == 202, (called.text, texted.text)
        assert set(called.json()["warnings"]) == {"email", "message", "language"}
        assert "It should have a period" in called.json()["warnings"]["email"]
        assert called.json()["warnings"]["message"] == "cut to 2000 characters (was 2500)"
        assert list(texted.json()["warnings"]) == ["email"]
        assert "special-use or reserved" in texted.json()["warnings"]["email"]

        # Each is contacted on its channel, as if no email had been sent.
        emulator.wait_for(lambda reqs: any(r["path"].endswith("/Calls.json") for r in reqs)
                          and any(r["path"].endswith("/Messages.json") for r in reqs), timeout=15)
        assert [r["form"]["To"] for r in emulator.of("/Calls.json")] == ["+15125550141"]
        assert [r["form"]["To"] for r in emulator.of("/Messages.json")] == ["+15125550142"]

        view = requests.get(f"{stack.url}/leads/{called.json()['id']}", headers=AUTH, timeout=5).json()
        assert view["email"] is None and view["language"] == "en"
        warning, = [e for e in view["timeline"] if e["type"] == "input_warning"]
        assert warning["data"]["email_raw"] == "jo@gmail"
        assert set(warning["data"]["fields"]) == {"email", "message", "language"}
        view = requests.get(f"{stack.url}/leads/{texted.json()['id']}", headers=AUTH, timeout=5).json()
        assert view["email"] is None
        assert [e["data"]["email_raw"] for e in view["timeline"] if e["type"] == "input_warning"] == [
            "morgan@example.test"]

        # The email channel needs the address; the phone and the required fields are still refused.
        refused = [post(phone="+1 512 555 0143", email="jo@gmail", channel="email", consent=False),
                   post(phone="12", email="jo@gmail"), post(name="", email="jo@gmail")]
        assert [r.status_code for r in refused] == [422, 422, 422]
        assert [list(r.json()["fields"]) for r in refused] == [["email"], ["phone"], ["name"]]
        clean = post(phone="+1 512 555 0144")
        assert clean.status_code == 202 and "warnings" not in clean.json()
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_openapi_documents_the_warnings(client):
    accepted = client.get("/openapi.json").get_json()["components"]["schemas"]["Accepted"]
    assert accepted["properties"]["warnings"]["additionalProperties"] == {"type": "string"}
