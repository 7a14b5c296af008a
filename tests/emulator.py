"""A loopback Twilio REST emulator: records what the official client sends, answers like Twilio."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

# A script entry decides one response: (status, body dict) or a callable, consumed in order.
Script = list[tuple[int, dict[str, Any]] | str]


class TwilioEmulator:
    """Twilio's Calls, Messages, call update and Participants endpoints on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.scripts: dict[str, Script] = {}
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.arrived = threading.Condition()
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> TwilioEmulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def script(self, kind: str, *responses: tuple[int, dict[str, Any]] | str) -> None:
        """Queue canned responses for 'call' or 'message' creates.

        'slow:N' handles the request normally but answers N seconds late (a lost response).
        """
        self.scripts.setdefault(kind, []).extend(responses)

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until pred(requests) is true; raise AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not pred(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; requests so far: {[r['path'] for r in self.requests]}")
                self.arrived.wait(left)
        return self.requests

    def of(self, suffix: str, method: str = "POST") -> list[dict[str, Any]]:
        """Recorded requests whose path ends with suffix."""
        return [r for r in self.requests if r["path"].endswith(suffix) and r["method"] == method]

    def _scripted(self, kind: str) -> Response | None:
        queue = self.scripts.get(kind)
        if not queue:
            return None
        entry = queue.pop(0)
        if isinstance(entry, str) and entry.startswith("slow:"):
            delay = float(entry[5:])
            request.environ["emulator.delay"] = delay
            return None
        status, body = entry
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _build(self) -> Flask:
        app = Flask("twilio-emulator")
        base = "/2010-04-01/Accounts/<account>"

        @app.before_request
        def _record() -> None:
            entry = {"path": request.path, "method": request.method, "form": request.form.to_dict(flat=True),
                     "multi": request.form.to_dict(flat=False), "args": request.args.to_dict(),
                     "auth": request.authorization.username if request.authorization else None,
                     "at": time.monotonic()}
            with self.arrived:
                self.requests.append(entry)
                self.arrived.notify_all()
            if self.on_request:
                self.on_request(entry)

        @app.after_request
        def _delay(resp: Response) -> Response:
            time.sleep(request.environ.get("emulator.delay", 0))
            return resp

        def now() -> str:
            return format_datetime(datetime.now(UTC))

        @app.post(base + "/Calls.json")
        def create_call(account: str):
            scripted = self._scripted("call")
            if scripted is not None:
                return scripted
            sid = "CA" + secrets.token_hex(16)
            call = {"sid": sid, "account_sid": account, "to": request.form["To"], "from": request.form["From"],
                    "status": "queued", "date_created": now(), "url": request.form.get("Url"),
                    "status_callback": request.form.get("StatusCallback"),
                    "amd_callback": request.form.get("AsyncAmdStatusCallback")}
            self.calls[sid] = call
            return call, 201

        @app.get(base + "/Calls.json")
        def list_calls(account: str):
            to = request.args.get("To")
            calls = [c for c in self.calls.values() if not to or c["to"] == to]
            return {"calls": calls, "page": 0, "page_size": 50, "next_page_uri": None, "uri": request.path}

        @app.post(base + "/Calls/<sid>.json")
        def update_call(account: str, sid: str):
            call = self.calls.setdefault(sid, {"sid": sid, "account_sid": account, "status": "in-progress"})
            call.update({k.lower(): v for k, v in request.form.items()})
            return call

        @app.post(base + "/Messages.json")
        def create_message(account: str):
            scripted = self._scripted("message")
            if scripted is not None:
                return scripted
            msg = {"sid": "SM" + secrets.token_hex(16), "account_sid": account, "to": request.form["To"],
                   "from": request.form.get("From"), "body": request.form.get("Body"), "status": "queued",
                   "date_created": now()}
            self.messages.append(msg)
            return msg, 201

        @app.get(base + "/Messages.json")
        def list_messages(account: str):
            to = request.args.get("To")
            msgs = [m for m in self.messages if not to or m["to"] == to]
            return {"messages": msgs, "page": 0, "page_size": 50, "next_page_uri": None, "uri": request.path}

        @app.post(base + "/Conferences/<conf>/Participants.json")
        def add_participant(account: str, conf: str):
            sid = "CA" + secrets.token_hex(16)
            call = {"sid": sid, "account_sid": account, "to": request.form.get("To"), "conference": conf,
                    "status": "queued", "date_created": now(), "url": request.form.get("Url"),
                    "status_callback": request.form.get("StatusCallback")}
            self.calls[sid] = call
            return {"call_sid": sid, "conference_sid": "CF" + secrets.token_hex(16), "account_sid": account,
                    "label": request.form.get("Label"), "status": "queued"}, 201

        return app
