"""The official twilio client sends every domain's REST calls to TWILIO_API_BASE_URL."""

from __future__ import annotations

import responses

from bot.runtime.twilio_client import api_base, make_client
from bot.settings import Settings


@responses.activate
def test_every_domain_is_redirected(tmp_path):
    base = "http://127.0.0.1:9/tw"
    settings = Settings(TWILIO_ACCOUNT_SID="AC" + "a" * 32, TWILIO_AUTH_TOKEN="t", TWILIO_API_BASE_URL=base,
                        LEADBOT_DATA_DIR=str(tmp_path))
    acct = "AC" + "a" * 32
    responses.post(f"{base}/2010-04-01/Accounts/{acct}/Calls.json",
                   json={"sid": "CA1", "account_sid": acct, "status": "queued"}, status=201)
    responses.post(f"{base}/2010-04-01/Accounts/{acct}/Messages.json",
                   json={"sid": "SM1", "account_sid": acct, "status": "queued"}, status=201)
    responses.get(f"{base}/v1/Services", json={"services": [], "meta": {"key": "services", "next_page_url": None}})
    client = make_client(settings)
    assert client.calls.create(to="+15125550100", from_="+15125550000", url="http://x").sid == "CA1"
    assert client.messages.create(to="+15125550100", from_="+15125550000", body="hi").sid == "SM1"
    assert client.messaging.v1.services.list() == []  # messaging.twilio.com is redirected too
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        f"{base}/2010-04-01/Accounts/{acct}/Calls.json", f"{base}/2010-04-01/Accounts/{acct}/Messages.json",
        f"{base}/v1/Services"]


def test_base_is_simulator_without_credentials_and_twilio_with_them(tmp_path):
    sim = Settings(PUBLIC_BASE_URL="http://me:5000", LEADBOT_DATA_DIR=str(tmp_path))
    assert api_base(sim) == "http://me:5000/simulator/api"
    real = Settings(TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t", LEADBOT_DATA_DIR=str(tmp_path))
    assert api_base(real) is None
