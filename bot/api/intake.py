"""Intake blueprint: POST /leads (JSON or form), GET /leads/<id>, and the OpenAPI document."""

from __future__ import annotations

import hmac
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from pydantic import ValidationError

from bot.channels.cadence import fresh_intent
from bot.flows.safetext import bad_character
from bot.runtime import crm
from bot.runtime.queueing import enqueue_contact
from bot.runtime.services import Services
from bot.store import leads as lead_service
from bot.store.leads import LeadIn, field_errors
from bot.store.prepared import raw_session
from bot.store.readmodels import lead_view

bp = Blueprint("intake", __name__)


def services() -> Services:
    """The app's shared services."""
    return current_app.extensions["leadbot"]


def json_error(status: int, error: str, fields: dict[str, str] | None = None) -> Response:
    """A JSON error body; `fields` names every bad field."""
    body: dict[str, Any] = {"error": error}
    if fields:
        body["fields"] = fields
    resp = jsonify(body)
    resp.status_code = status
    return resp


def api_key_required(view):  # noqa: ANN001, ANN201 - decorator
    """Bearer-token auth, compared in constant time against every configured key."""

    @wraps(view)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        # Compare against every key without short-circuiting, so timing leaks nothing.
        ok = False
        for key in services().settings.api_keys:
            ok |= hmac.compare_digest(token.encode(), key.encode())
        if not token or not ok:
            resp = json_error(401, "unauthorized: send 'Authorization: Bearer <LEAD_API_KEY>'")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="leadbot"'
            return resp
        return view(*args, **kwargs)

    return wrapper


def _payload() -> dict[str, Any] | Response:
    """The request body as a dict, from JSON or a form post."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return json_error(400, "body must be a JSON object", {"body": "invalid or non-object JSON"})
        return data
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    unsupported = {"body": f"unsupported {request.mimetype!r}"}
    return json_error(415, "send application/json or a form post", unsupported)


@bp.post("/leads")
@api_key_required
def create_lead():
    """Validate, commit, then enqueue; 202 only after the lead is durable."""
    svc = services()
    data = _payload()
    if isinstance(data, Response):
        return data
    try:
        lead_in = LeadIn.model_validate(data, context={"region": svc.settings.default_region,
                                                          "require_consent": svc.settings.require_consent})
    except ValidationError as exc:
        return json_error(422, "validation failed", field_errors(exc))
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 255 and bad_character(key) is None):
        problem = {"Idempotency-Key": "must be 1-255 characters, no control characters"}
        return json_error(400, "bad Idempotency-Key", problem)
    evidence = {"ip": request.remote_addr, "user_agent": request.user_agent.string}
    with raw_session(svc.engine) as conn:
        lead_id, status, created, replay = lead_service.create_lead(
            conn, lead_in, evidence, key, svc.settings.dedupe_window_seconds, svc.writer
        )
    body: dict[str, Any] = {"id": lead_id, "status": status}
    if created and status == "received":
        # On failure the sweeper picks it up.
        enqueue_contact(svc.queue, lead_id, skip_while_down=True, channel=lead_in.channel)
    if created:
        crm.emit_committed(svc, lead_id, "lead.received")
    if not created:
        body["duplicate"] = True
        # A new request from a lead we could not reach, or are nurturing, is fresh intent: contact it now.
        # The same request again (its Idempotency-Key) is not.
        body["status"] = status if replay else fresh_intent(svc, lead_id, status, key)
    if lead_in.warnings:
        body["warnings"] = lead_in.warnings
    resp = jsonify(body)
    resp.status_code = 202
    resp.headers["Location"] = f"/leads/{body['id']}"
    return resp


@bp.get("/leads/<lead_id>")
@api_key_required
def get_lead(lead_id: str):
    """The lead with its attempts, answers, handoff and timeline."""
    with services().sessions() as session:
        view = lead_view(session, lead_id)
    if view is None:
        abort(404)
    return jsonify(view)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document for the intake API."""
    from bot.api.openapi import document

    return jsonify(document(LeadIn, services().settings.require_consent))
