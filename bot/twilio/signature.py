"""Twilio webhook guard: X-Twilio-Signature checked against PUBLIC_BASE_URL + path + query."""

from __future__ import annotations

from functools import wraps

from flask import current_app, jsonify, request
from twilio.request_validator import RequestValidator

from bot.twilio.replay import once


def public_url() -> str:
    """The URL Twilio signed: our public base plus path and query (request.url is wrong behind proxies)."""
    svc = current_app.extensions["leadbot"]
    query = request.query_string.decode()
    return svc.settings.base_url + request.path + (f"?{query}" if query else "")


def twilio_signed(view):  # noqa: ANN001, ANN201 - decorator
    """Reject (403) any webhook whose signature does not match our auth token; answer replays once."""

    @wraps(view)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        svc = current_app.extensions["leadbot"]
        signature = request.headers.get("X-Twilio-Signature", "")
        params = request.form.to_dict() if request.method == "POST" else {}
        if not signature or not RequestValidator(svc.webhook_token).validate(public_url(), params, signature):
            resp = jsonify({"error": "forbidden: bad or missing X-Twilio-Signature"})
            resp.status_code = 403
            return resp
        return once(view, *args, **kwargs)

    return wrapper


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The signature Twilio would send (used by the simulator and tests)."""
    return RequestValidator(token).compute_signature(url, params)
