"""The Rasa action server, driven through its real HTTP webhook with Rasa-shaped request bodies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from .conftest import ROOT, SHIPPED

API_KEY = "rasa-test-key"
SLOTS = ("service_need", "budget", "timing", "authority")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Leadbot(BaseHTTPRequestHandler):
    """A stand-in for leadbot's outcome endpoint that records what it is sent."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "json": json.loads(body)}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: Any) -> None:
        """Keep test output clean."""


@pytest.fixture(scope="module")
def leadbot() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Leadbot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Leadbot.received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def action_server(leadbot: tuple[str, list[dict[str, Any]]]) -> Iterator[str]:
    """`python -m rasa_sdk --actions bot.channels.rasa_actions` on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "SANIC_HOST": "127.0.0.1",
        "LEADBOT_URL": leadbot[0],
        "LEADBOT_API_KEY": API_KEY,
        "FLOWS_DIR": str(SHIPPED),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "bot.channels.rasa_actions", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still importing
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"action server did not start:\n{output[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def call(
    url: str,
    action: str,
    slots: dict[str, Any],
    new_slots: dict[str, Any] | None = None,
    text: str = "",
    sender: str = "lead-123",
) -> dict[str, Any]:
    """POST the body Rasa sends to /webhook; slot candidates come last, as the form puts them."""
    events: list[dict[str, Any]] = [
        {"event": "action", "timestamp": 1.0, "name": "action_listen"},
        {
            "event": "user",
            "timestamp": 2.0,
            "text": text,
            "parse_data": {"intent": {"name": "inform", "confidence": 1.0}},
        },
        {"event": "active_loop", "timestamp": 3.0, "name": "prequal_form"},
    ]
    events += [
        {"event": "slot", "timestamp": 4.0, "name": k, "value": v} for k, v in (new_slots or {}).items()
    ]
    body = {
        "next_action": action,
        "sender_id": sender,
        "tracker": {
            "sender_id": sender,
            "slots": {**{s: None for s in SLOTS}, "requested_slot": None, **slots, **(new_slots or {})},
            "latest_message": {
                "text": text,
                "intent": {"name": "inform", "confidence": 1.0},
                "entities": [],
                "intent_ranking": [],
            },
            "latest_event_time": 4.0,
            "followup_action": None,
            "paused": False,
            "events": events,
            "latest_input_channel": "rest",
            "active_loop": {"name": "prequal_form"},
            "latest_action": {"action_name": "prequal_form"},
            "latest_action_name": "prequal_form",
        },
        "domain": {
            "version": "3.1",
            "config": {"store_entities_as_slots": True},
            "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
            "intents": ["inform", "stop"],
            "entities": [],
            "slots": {
                s: {
                    "type": "any",
                    "influence_conversation": False,
                    "mappings": [
                        {
                            "type": "from_text",
                            "conditions": [{"active_loop": "prequal_form", "requested_slot": s}],
                        }
                    ],
                }
                for s in SLOTS
            },
            "responses": {},
            "actions": ["validate_prequal_form", "action_submit_prequal"],
            "forms": {"prequal_form": {"required_slots": list(SLOTS)}},
            "e2e_actions": [],
        },
        "version": "3.8.0",
    }
    reply = requests.post(f"{url}/webhook", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def slot_events(reply: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in reply["events"] if e["event"] == "slot"}


def test_validate_budget_uses_the_shared_parser(action_server: str) -> None:
    reply = call(
        action_server, "validate_prequal_form", {"service_need": "yes"}, {"budget": "around five grand"}
    )
    assert slot_events(reply)["budget"] == {"min": 5000, "max": 5000, "currency": "USD"}
    assert reply["responses"] == []


def test_validate_rejects_with_the_flow_reprompt(action_server: str) -> None:
    reply = call(action_server, "validate_prequal_form", {"service_need": "yes"}, {"timing": "purple"})
    assert slot_events(reply)["timing"] is None
    assert [r["text"] for r in reply["responses"]] == [
        "Sorry, when are you hoping to start? Right away, in a few weeks, or later this year?"
    ]


def test_validate_each_slot(action_server: str) -> None:
    reply = call(
        action_server,
        "validate_prequal_form",
        {},
        {"service_need": "yeah sure", "authority": "I need to ask my boss"},
    )
    events = slot_events(reply)
    assert (events["service_need"], events["authority"]) == ("yes", "someone_else")


def test_no_need_ends_the_form(action_server: str) -> None:
    reply = call(action_server, "validate_prequal_form", {}, {"service_need": "nope"})
    events = slot_events(reply)
    assert events["service_need"] == "no" and events["requested_slot"] is None


def test_opt_out_wins_in_rasa_too(action_server: str) -> None:
    reply = call(action_server, "validate_prequal_form", {"service_need": "yes"}, {"budget": "STOP"})
    events = slot_events(reply)
    assert events["opted_out"] is True and events["budget"] is None and events["requested_slot"] is None
    assert reply["responses"][0]["text"] == "Understood. We won't contact you again. Goodbye."


def test_ask_action_speaks_the_flow_prompt(action_server: str) -> None:
    reply = call(action_server, "action_ask_budget", {"service_need": "yes"})
    assert reply["responses"][0]["text"].startswith("Roughly what budget do you have in mind?")


def test_submit_posts_answers_to_leadbot(
    action_server: str, leadbot: tuple[str, list[dict[str, Any]]]
) -> None:
    _, received = leadbot
    received.clear()
    slots = {
        "service_need": "yes",
        "budget": {"min": 5000, "max": 5000, "currency": "USD"},
        "timing": {"kind": "asap", "days_from_now": 0, "start": "2025-03-10", "end": "2025-03-10"},
        "authority": "me",
        "lead_id": "L42",
        "first_name": "Maria",
    }
    reply = call(action_server, "action_submit_prequal", slots, sender="conversation-9")
    assert received == [
        {
            "path": "/leads/L42/outcome",
            "auth": f"Bearer {API_KEY}",
            "json": {
                "answers": {
                    "need": "yes",
                    "budget": slots["budget"],
                    "timing": slots["timing"],
                    "authority": "me",
                },
                "source": "rasa",
                "outcome": "qualified_ready",
            },
        }
    ]
    assert reply["responses"][0]["text"].startswith("Great news, Maria.")
    assert slot_events(reply) == {"prequal_outcome": "qualified_ready", "leadbot_notified": True}


def test_submit_falls_back_to_sender_id(
    action_server: str, leadbot: tuple[str, list[dict[str, Any]]]
) -> None:
    _, received = leadbot
    received.clear()
    reply = call(action_server, "action_submit_prequal", {"service_need": "no"}, sender="lead-777")
    assert received[0]["path"] == "/leads/lead-777/outcome" and received[0]["json"]["outcome"] == "not_a_fit"
    assert reply["responses"][0]["text"].startswith("Thanks for your time")
