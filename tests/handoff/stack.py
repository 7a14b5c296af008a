"""Helpers for handoff tests through the real processes: gunicorn and `leadbot worker` (tests.procs.Stack),
the loopback Twilio emulator over HTTP, and a real SMTP server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bot.twilio.twiml_player import CallLeg
from tests.conftest import API_KEY, lead_body
from tests.procs import Stack
from tests.test_e2e import http_post, stack_env

AUTH = {"Authorization": f"Bearer {API_KEY}"}
TOKEN = "e2e-token"  # stack_env's TWILIO_AUTH_TOKEN: what the app checks webhook signatures with
SERVICE = "kitchen remodel"  # routed to the prequal flow


def start(tmp_path: Path, db_url: str, redis_url: str, emulator: Any, smtp_port: int, roster: Path,
          **env: str) -> Stack:
    """gunicorn + one `leadbot worker` on this roster, Twilio at the emulator, mail to the SMTP server."""
    values = {**stack_env(tmp_path, db_url, redis_url, emulator), "ROSTER_PATH": str(roster),
              "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "MAIL_FROM": "leadbot@example.com", **env}
    return Stack(values, tmp_path).start()


def wait(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll until ``check()`` returns something truthy (the processes work on their own clock)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def view(stack: Stack, lead_id: str) -> dict[str, Any]:
    """GET /leads/<id>."""
    return requests.get(f"{stack.url}/leads/{lead_id}", headers=AUTH, timeout=5).json()


def kinds(stack: Stack, lead_id: str) -> list[str]:
    """The lead's timeline event types."""
    return [e["type"] for e in view(stack, lead_id)["timeline"]]


def leg(emulator: Any, phone: str) -> tuple[CallLeg, dict[str, Any]]:
    """The newest call the app placed to ``phone``, as a leg the test answers over HTTP."""
    calls = wait(lambda: [c for c in list(emulator.calls.values()) if c.get("to") == phone],
                 what=f"a call to {phone}")
    call = calls[-1]
    return CallLeg(http_post, TOKEN, {"CallSid": call["sid"], "From": call["from"], "To": phone,
                                      "AccountSid": call["account_sid"]}), call


def qualify_by_voice(stack: Stack, emulator: Any, phone: str = "+1 512 555 0100",
                     **fields: Any) -> tuple[str, CallLeg]:
    """POST a lead, answer the bot's call and qualify for a live transfer; returns (lead id, prospect leg)."""
    resp = requests.post(stack.url + "/leads", json=lead_body(phone=phone, service=SERVICE, **fields),
                         headers=AUTH, timeout=5)
    assert resp.status_code == 202, resp.text
    prospect, call = leg(emulator, "+1" + "".join(ch for ch in phone if ch.isdigit())[-10:])
    prospect.answer(call["url"])
    prospect.reply(speech="Yes.")
    prospect.reply(speech="about twelve thousand dollars")
    prospect.reply(speech="right away")
    prospect.reply(digits="1")  # "me": the prospect decides
    return resp.json()["id"], prospect


def qualify_by_api(stack: Stack, emulator: Any, phone: str = "+1 512 555 0100", **fields: Any) -> str:
    """POST a lead, then its qualifying answers to POST /leads/<id>/outcome (as the Rasa form does)."""
    resp = requests.post(stack.url + "/leads", json=lead_body(phone=phone, service=SERVICE, **fields),
                         headers=AUTH, timeout=5)
    assert resp.status_code == 202, resp.text
    lead_id = resp.json()["id"]
    number = "+1" + "".join(ch for ch in phone if ch.isdigit())[-10:]
    leg(emulator, number)  # the bot has called them (its status moves no further: the emulator is quiet)
    answers = {"need": "yes", "budget": {"min": 12000, "max": 12000, "currency": "USD"},
               "timing": {"kind": "asap", "days_from_now": 0}, "authority": "me"}
    out = requests.post(f"{stack.url}/leads/{lead_id}/outcome", json={"answers": answers}, headers=AUTH,
                        timeout=10)
    assert out.status_code in (200, 202), out.text
    return lead_id


def text_in(stack: Stack, phone: str, body: str) -> requests.Response:
    """A signed inbound SMS, as Twilio posts it."""
    from bot.twilio.signature import sign

    url, params = stack.url + "/twilio/sms", {"From": phone, "To": "+15125550000", "Body": body,
                                              "MessageSid": "SM" + uuid.uuid4().hex}  # each text its own
    headers = {"X-Twilio-Signature": sign(TOKEN, url, params)}
    return requests.post(url, data=params, headers=headers, timeout=5)


def texts_to(emulator: Any, phone: str) -> list[str]:
    """Bodies of the texts the app sent to ``phone``."""
    return [m["body"] for m in list(emulator.messages) if m["to"] == phone]


def unassigned(stack: Stack) -> list[dict[str, Any]]:
    """GET /reports/unassigned."""
    resp = requests.get(stack.url + "/reports/unassigned", headers=AUTH, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()["leads"]
