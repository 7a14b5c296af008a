"""The benches build their own raw webhook requests; one that drifts from what leadbot checks measures
nothing but 403s (webhook_turn did, once the Gather action gained its turn number)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from urllib.parse import urlsplit

from bot.twilio.twiml_player import last
from tests.conftest import PUBLIC, lead_body
from tests.lifecycle_kit import leg_for, work

BENCH = Path(__file__).resolve().parents[1] / "bench"  # a folder of scripts in this repo, not a package
sys.path.insert(0, str(BENCH))  # the script's own `from common import ...`
_spec = importlib.util.spec_from_file_location("webhook_turn", BENCH / "webhook_turn.py")
webhook_turn = sys.modules["webhook_turn"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(webhook_turn)


def test_the_turn_bench_request_is_a_valid_signed_turn(client, auth, services, emulator, monkeypatch):
    monkeypatch.setattr(webhook_turn, "TOKEN", services.webhook_token)
    assert client.post("/leads", json=lead_body(service="kitchen remodel"), headers=auth).status_code == 202
    work(services)
    leg, form = leg_for(client, services, emulator)
    leg.answer(form["Url"])
    action = last(leg.verbs, "Gather")["action"]
    assert urlsplit(action).query  # the turn number rides in the query string
    raw = webhook_turn.turn_request(action, {"Sid": leg.params["CallSid"], "To": form["To"],
                                             "From": form["From"]}, "yes")
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    _, target, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in lines)
    resp = client.post(target, data=body, headers={"X-Twilio-Signature": headers["X-Twilio-Signature"]},
                       content_type=headers["Content-Type"], base_url=PUBLIC)
    assert resp.status_code == 200, resp.text
    assert "budget" in resp.get_data(as_text=True)  # the bench's `need -> budget` step, as it expects
