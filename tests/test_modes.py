"""Modes and secrets: LEADBOT_ENV is checked, the landing page shows only the generated key and only
locally, real Twilio credentials never mount the simulator, whose page is local, and HTML pages carry
the security headers that TwiML does not need."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.runtime import dev_defaults
from bot.settings import Settings
from tests.conftest import API_KEY, lead_body, make_settings

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.mark.parametrize("value", ["Production", "PRODUCTION", " development ", "Development"])
def test_documented_environments_are_accepted_in_any_case(value):
    assert Settings(LEADBOT_ENV=value).env == value.strip().lower()


@pytest.mark.parametrize("value", ["prod", "dev", "staging", "productio", ""])
def test_any_other_environment_refuses_to_start(value):
    with pytest.raises(ValidationError, match="LEADBOT_ENV"):
        Settings(LEADBOT_ENV=value)


def test_cli_says_why_it_will_not_start(monkeypatch, capsys, tmp_path):
    from bot.cli import main
    from bot.jobs import worker

    def started(*_a: object, **_k: object) -> None:
        raise AssertionError("a worker started in development mode")

    monkeypatch.setattr(worker, "run", started)  # what today's code would do, without running it
    monkeypatch.setenv("LEADBOT_ENV", "prod")
    monkeypatch.setenv("LEADBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["worker"]) == 2
    assert "LEADBOT_ENV" in capsys.readouterr().err


def test_a_real_auth_token_never_mounts_the_simulator(tmp_path, db_url, redis_url, emulator):
    from app import create_app

    for creds in ({"TWILIO_AUTH_TOKEN": "real-token"}, {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32}):
        s = make_settings(tmp_path, db_url, redis_url, emulator.url, **creds)
        assert not s.simulated_telephony
        app = create_app(s)
        try:
            assert app.test_client().get("/simulator/state").status_code == 404
            assert not any(r.rule.startswith("/simulator") for r in app.url_map.iter_rules())
        finally:
            app.extensions["leadbot"].close()


def test_landing_page_never_shows_a_configured_key(client):
    # The test settings set LEAD_API_KEYS: a real key, never printed, even to this machine.
    page = client.get("/").get_data(as_text=True)
    assert API_KEY not in page and "second-key" not in page


def test_landing_page_shows_the_generated_key_only_to_loopback(tmp_path, db_url, redis_url, emulator):
    from app import create_app

    s = make_settings(tmp_path, db_url, redis_url, emulator.url, LEAD_API_KEYS=None)
    app = create_app(s)
    try:
        key = dev_defaults.generated_key(dev_defaults.apply(s))
        assert key
        c = app.test_client()
        assert key in c.get("/").get_data(as_text=True)
        assert key not in c.get("/", environ_overrides=REMOTE).get_data(as_text=True)
        assert key not in c.get("/", headers={"X-Forwarded-For": "203.0.113.9"}).get_data(as_text=True)
    finally:
        app.extensions["leadbot"].close()


@pytest.mark.parametrize(("method", "path"), [("get", "/simulator/"), ("get", "/simulator/state"),
                                              ("post", "/simulator/sms"), ("post", "/simulator/calls/CA1/answer")])
def test_simulator_page_and_actions_are_for_this_machine_or_the_token(client, services, method, path):
    body = {"from": "+15125550100", "body": "STOP"}
    remote = getattr(client, method)(path, json=body, environ_overrides=REMOTE)
    assert remote.status_code == 403
    proxied = getattr(client, method)(path, json=body, headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    with_token = getattr(client, method)(path, json=body, environ_overrides=REMOTE,
                                         headers={"X-Simulator-Token": services.webhook_token})
    assert with_token.status_code != 403


def test_html_pages_carry_security_headers_and_twiml_does_not(client, signed):
    for path in ("/", "/simulator/"):
        resp = client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Frame-Options"] == "DENY"
    page = client.get("/simulator/")
    nonce = page.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.get_data(as_text=True)
    assert "onclick=" not in page.get_data(as_text=True)  # inline handlers would be blocked
    params = {"From": "+15125550100", "To": "+15005550006", "CallSid": "CA1"}
    twiml = client.post("/twilio/voice", data=params, headers=signed("/twilio/voice", params))
    assert twiml.mimetype == "text/xml"
    for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert name not in twiml.headers


def test_api_answers_are_not_sniffed(client):
    resp = client.post("/leads", json=lead_body(), headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in resp.headers
