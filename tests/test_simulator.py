"""The built-in Twilio simulator: its REST endpoints, and the page a person uses (real headless Chromium)."""

from __future__ import annotations

import base64
import shutil

import pytest
import requests

from tests.conftest import API_KEY, lead_body
from tests.procs import Stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"AC{'0' * 32}:{token}".encode()).decode()}


def test_rest_endpoints_require_auth_and_record(client, services):
    base = "/simulator/api/2010-04-01/Accounts/AC" + "0" * 32
    assert client.post(base + "/Calls.json", data={"To": "+1", "Url": "x"}).status_code == 401
    assert client.post(base + "/Calls.json", data={"To": "+1", "Url": "x"}, headers=basic("wrong")).status_code == 401
    headers = basic(services.webhook_token)
    missing = client.post(base + "/Calls.json", data={"To": "+15125550100"}, headers=headers)
    assert missing.status_code == 400 and missing.get_json()["code"] == 21205
    made = client.post(base + "/Calls.json", data={"To": "+15125550100", "From": "+15005550006",
                                                  "Url": "http://leadbot.test/twilio/voice/answer/x"}, headers=headers)
    assert made.status_code == 201 and made.get_json()["sid"].startswith("CA")
    listed = client.get(base + "/Calls.json?To=%2B15125550100", headers=headers).get_json()
    assert [c["sid"] for c in listed["calls"]] == [made.get_json()["sid"]]
    msg = client.post(base + "/Messages.json", data={"To": "+15125550100", "Body": "hi"}, headers=headers)
    assert msg.status_code == 201
    assert {m["body"] for m in client.get("/simulator/state").get_json()["messages"]} == {"hi"}


@pytest.fixture
def sim_stack(tmp_path, db_url, redis_url, monkeypatch):  # noqa: ANN001, ANN201
    """The whole system on embedded telephony: no Twilio credentials, so the simulator answers."""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "LEAD_API_KEYS": API_KEY,
           "LEADBOT_DATA_DIR": str(tmp_path / "var"), "CALLING_HOURS": "00:00-23:59:59", "SECRET_KEY": "x"}
    stack = Stack(env, tmp_path).start()
    yield stack
    stack.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it in CI)")
def test_person_answers_call_in_browser_and_reaches_outcome(sim_stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    resp = requests.post(sim_stack.url + "/leads", json=lead_body(service="kitchen remodel"),
                         headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    lead_id = resp.json()["id"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(sim_stack.url + "/simulator/")
            page.locator("button.answer").first.click(timeout=15000)
            row = page.locator("#calls tr").first
            expect(row.locator(".heard")).to_contain_text("Hi Ada", timeout=10000)
            for said in ["yes", "about 5000 dollars", "next year"]:
                row.locator("input.speech").fill(said)
                row.locator("button.say").click()
                page.wait_for_timeout(300)
            row.locator("input.digits").fill("3")
            row.locator("button.press").click()
            expect(row.locator(".heard")).to_contain_text("check back", timeout=10000)
            page.screenshot(path=str(tmp_path / "simulator.png"), full_page=True)
        finally:
            browser.close()
    view = requests.get(f"{sim_stack.url}/leads/{lead_id}", headers={"Authorization": f"Bearer {API_KEY}"},
                        timeout=5).json()
    assert view["status"] == "nurturing"
    assert "call.completed" in [e["type"] for e in view["timeline"]]
