"""Built-in Twilio simulator: the REST endpoints leadbot uses, plus a page to play prospect and rep."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from bot.runtime.dev_defaults import local_client
from bot.store.leads import field_errors
from bot.twilio.signature import sign
from bot.twilio.twiml_player import CallLeg

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
API = "/api/2010-04-01/Accounts/<account>"


def _svc():  # noqa: ANN202
    return current_app.extensions["leadbot"]


def _now() -> str:
    """Twilio's RFC 2822 timestamps."""
    return format_datetime(datetime.now(UTC))


def _authorized() -> bool:
    """Basic auth with the simulator's per-install token, as Twilio checks its own."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        _user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return hmac.compare_digest(password, _svc().webhook_token)


class CallInput(BaseModel):
    """What the page sends for a call action: strings only (a number here was a 500)."""

    model_config = ConfigDict(extra="ignore")
    answered_by: StrictStr | None = Field(None, max_length=40)
    digits: StrictStr | None = Field(None, max_length=40, pattern=r"^[0-9*#w]*$")
    speech: StrictStr | None = Field(None, max_length=2000)


class TextInput(BaseModel):
    """A text the person sends to our number from the page."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    from_: StrictStr = Field(alias="from", min_length=1, max_length=40)
    body: StrictStr = Field(min_length=1, max_length=1600)


def _body(model: type[BaseModel]) -> BaseModel | tuple[Any, int]:
    """The JSON body validated against `model`, or a 422 naming every bad field."""
    data = request.get_json(silent=True)
    if data is None and not request.get_data():
        data = {}
    if not isinstance(data, dict):
        return jsonify({"error": "body must be a JSON object", "fields": {"body": "not a JSON object"}}), 422
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {k.replace("from_", "from"): v for k, v in field_errors(exc).items()}
        return jsonify({"error": "validation failed", "fields": fields}), 422


@bp.before_request
def page_is_local():  # noqa: ANN201
    """The page can answer calls and text STOP as anyone: only this machine, or whoever has the token.

    The REST endpoints check Basic auth with the same token, as Twilio does.
    """
    if request.path.startswith("/simulator/api/"):
        return None
    token = request.headers.get("X-Simulator-Token") or request.args.get("token") or ""
    if local_client(request.remote_addr, request.headers):
        return None
    if token and hmac.compare_digest(token, _svc().webhook_token):
        return None
    return jsonify({"error": "the simulator answers loopback clients only (or send X-Simulator-Token)"}), 403


def _error(status: int, code: int, message: str):  # noqa: ANN202
    """Twilio's REST error body."""
    resp = jsonify({"code": code, "message": message, "status": status, "more_info": ""})
    resp.status_code = status
    return resp


def _save(kind: str, record: dict[str, Any]) -> None:
    """Keep a call or message in Redis so every web process sees it."""
    r = _svc().redis
    r.set(f"sim:{kind}:{record['sid']}", json.dumps(record))
    r.lpush(f"sim:{kind}s", record["sid"])
    r.ltrim(f"sim:{kind}s", 0, 199)


def _load(kind: str, sid: str) -> dict[str, Any] | None:
    raw = _svc().redis.get(f"sim:{kind}:{sid}")
    return json.loads(raw) if raw else None


def _all(kind: str) -> list[dict[str, Any]]:
    r = _svc().redis
    return [json.loads(x) for x in (r.get(f"sim:{kind}:{sid.decode()}") for sid in r.lrange(f"sim:{kind}s", 0, 99))
            if x]


@bp.post(API + "/Calls.json")
def create_call(account: str):
    """Calls.create: record the call; a person answers it from the simulator page."""
    if not _authorized():
        return _error(401, 20003, "Authenticate")
    f = request.form
    if not f.get("To") or not (f.get("Url") or f.get("Twiml")):
        return _error(400, 21205 if f.get("To") else 21201, "To and Url are required")
    call = {"sid": "CA" + secrets.token_hex(16), "account_sid": account, "to": f["To"], "from": f.get("From"),
            "status": "queued", "url": f.get("Url"), "status_callback": f.get("StatusCallback"),
            "amd_callback": f.get("AsyncAmdStatusCallback"),
            "date_created": _now(), "direction": "outbound-api", "heard": [], "verbs": []}
    _save("call", call)
    return jsonify(_call_json(call)), 201


@bp.get(API + "/Calls.json")
def list_calls(account: str):
    """Calls.list filtered by To/From, newest first."""
    if not _authorized():
        return _error(401, 20003, "Authenticate")
    to, frm = request.args.get("To"), request.args.get("From")
    calls = [_call_json(c) for c in _all("call") if (not to or c["to"] == to) and (not frm or c["from"] == frm)]
    return jsonify({"calls": calls, "page": 0, "page_size": len(calls), "next_page_uri": None,
                    "previous_page_uri": None, "uri": request.path, "first_page_uri": request.path})


@bp.get(API + "/Messages.json")
def list_messages(account: str):
    """Messages.list filtered by To/From, newest first."""
    if not _authorized():
        return _error(401, 20003, "Authenticate")
    to, frm = request.args.get("To"), request.args.get("From")
    msgs = [m for m in _all("message") if (not to or m["to"] == to) and (not frm or m["from"] == frm)]
    return jsonify({"messages": msgs, "page": 0, "page_size": len(msgs), "next_page_uri": None,
                    "previous_page_uri": None, "uri": request.path, "first_page_uri": request.path})


@bp.post(API + "/Calls/<sid>.json")
def update_call(account: str, sid: str):
    """Calls(sid).update: redirect to a new Url or hang up."""
    if not _authorized():
        return _error(401, 20003, "Authenticate")
    call = _load("call", sid)
    if call is None:
        return _error(404, 20404, "not found")
    if request.form.get("Status") in ("completed", "canceled"):
        call["status"] = request.form["Status"]
    if request.form.get("Url"):
        call["url"] = request.form["Url"]
        call["pending_redirect"] = True
    _save("call", call)
    return jsonify(_call_json(call))


@bp.post(API + "/Messages.json")
def create_message(account: str):
    """Messages.create: record an outbound text."""
    if not _authorized():
        return _error(401, 20003, "Authenticate")
    f = request.form
    if not f.get("To") or not f.get("Body"):
        return _error(400, 21602 if f.get("To") else 21604, "To and Body are required")
    msg = {"sid": "SM" + secrets.token_hex(16), "account_sid": account, "to": f["To"], "from": f.get("From"),
           "body": f["Body"], "status": "queued", "direction": "outbound-api", "date_created": _now(),
           "status_callback": f.get("StatusCallback")}
    _save("message", msg)
    return jsonify(msg), 201


def _call_json(call: dict[str, Any]) -> dict[str, Any]:
    """The public part of a simulated call, shaped like Twilio's."""
    keys = ("sid", "account_sid", "to", "from", "status", "date_created", "direction")
    return {k: call.get(k) for k in keys} | {"start_time": None, "end_time": None, "price": None}


# ---- the page and its actions: a person plays the prospect or the rep ----

def _leg(call: dict[str, Any]) -> CallLeg:
    """A CallLeg that posts to this app's own signed webhooks in-process."""
    leg = CallLeg(_post_local, _svc().webhook_token, {"CallSid": call["sid"], "AccountSid": call["account_sid"],
                                               "From": call["from"] or "", "To": call["to"],
                                               "Direction": "outbound-api"})
    leg.verbs = call.get("verbs", [])
    return leg


def _status(call: dict[str, Any], status: str, leg: CallLeg, **extra: str) -> None:
    """Send a status callback, as Twilio would."""
    call["status"] = status
    if call.get("status_callback"):
        params = {**leg.params, "CallStatus": status, **extra}
        _post_local(call["status_callback"], params,
                    {"X-Twilio-Signature": sign(_svc().webhook_token, call["status_callback"], params)})


@bp.get("/")
def page():
    """The simulator page."""
    return render_template("simulator.html")


@bp.get("/state")
def state():
    """Calls and messages for the page to render."""
    return jsonify({"calls": _all("call"), "messages": _all("message"), "number": _svc().settings.caller_id})


@bp.post("/calls/<sid>/<action>")
def act(sid: str, action: str):
    """answer | input | hangup a simulated call, driving the real signed webhooks."""
    call = _load("call", sid)
    if call is None:
        return jsonify({"error": "no such call"}), 404
    leg = _leg(call)
    body = _body(CallInput)
    if not isinstance(body, CallInput):
        return body
    try:
        if action == "answer":
            _status(call, "ringing", leg)
            leg.answer(call["url"], body.answered_by or "human")
            call["status"] = "in-progress"
        elif action == "machine":  # voicemail picks up: async AMD reports it, the call is redirected
            _status(call, "ringing", leg)
            # Synchronous AMD (a rep's call) says so on answer; asynchronous AMD reports it a moment later.
            leg.answer(call["url"], "" if call.get("amd_callback") else "machine_start")
            if call.get("amd_callback"):
                leg.amd(call["amd_callback"], body.answered_by or "machine_end_beep")
            redirected = _load("call", sid) or call
            if redirected.get("pending_redirect"):
                call["url"] = redirected["url"]
                leg.request(call["url"])
            call["status"] = "in-progress"
        elif action == "input":
            said = body.speech or (f"[pressed {body.digits}]" if body.digits else "[silence]")
            call.setdefault("heard", []).append(f"You: {said}")
            leg.reply(digits=body.digits or None, speech=body.speech or None)
        elif action == "hangup":
            _status(call, "completed", leg, CallDuration="30")
        else:
            return jsonify({"error": f"unknown action {action!r}"}), 400
    except RuntimeError as exc:
        return jsonify({"error": str(exc)}), 409
    if leg.ended and action != "hangup":
        _status(call, "completed", leg, CallDuration="30")
    call["verbs"], call["heard"] = leg.verbs, call.get("heard", []) + leg.heard
    _save_existing(call)
    return jsonify(call)


def _save_existing(call: dict[str, Any]) -> None:
    """Update a call without moving it in the list."""
    _svc().redis.set(f"sim:call:{call['sid']}", json.dumps(call))


@bp.post("/sms")
def sms_reply():
    """The prospect (or a rep) texts our number; the reply TwiML becomes an outbound message."""
    body = _body(TextInput)
    if not isinstance(body, TextInput):
        return body
    frm, text = body.from_, body.body
    svc = _svc()
    params = {"MessageSid": "SM" + secrets.token_hex(16), "From": frm, "To": svc.settings.caller_id, "Body": text,
              "AccountSid": "AC" + "0" * 32}
    _save("message", {"sid": params["MessageSid"], "to": params["To"], "from": frm, "body": text,
                      "direction": "inbound", "status": "received", "date_created": _now()})
    leg = CallLeg(_post_local, svc.webhook_token, params)
    verbs = leg.request(svc.settings.base_url + "/twilio/sms")
    for v in verbs:
        if v["verb"] == "Message":
            _save("message", {"sid": "SM" + secrets.token_hex(16), "to": frm, "from": params["To"],
                              "body": v["text"], "direction": "outbound-reply", "status": "sent",
                              "date_created": _now()})
    return jsonify({"ok": True, "replies": [v["text"] for v in verbs if v["verb"] == "Message"]})


def _post_local(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    """POST to one of this app's routes in-process."""
    resp = current_app.test_client().post(url.removeprefix(_svc().settings.base_url), data=params, headers=headers)
    return resp.status_code, resp.get_data(as_text=True)
