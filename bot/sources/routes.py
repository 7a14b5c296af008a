"""Source webhooks: POST /sources/google-ads, GET+POST /sources/facebook, POST /sources/<name> (forms)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, request
from pydantic import ValidationError

from bot.api.intake import json_error
from bot.runtime.services import Services
from bot.sources import facebook, google_ads
from bot.sources.ingest import Ingested, Submission, ingest, validate
from bot.sources.mapping import Entry, SourcesConfigError, apply, load_sources
from bot.store.leads import field_errors

bp = Blueprint("sources", __name__, url_prefix="/sources")
log = logging.getLogger(__name__)
_SOURCES_CACHE = "sources_yaml"


def services() -> Services:
    """The app's shared services."""
    return current_app.extensions["leadbot"]


def _entries(svc: Services) -> dict[str, Entry]:
    """The sources.yaml entries, re-read when the file changes; a broken edit keeps the last good ones."""
    path = svc.settings.sources_path
    try:
        stat = path.stat()
        stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    cached = svc.extras.get(_SOURCES_CACHE)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        entries = load_sources(path) if stamp else {}
    except SourcesConfigError as exc:
        log.error("%s: broken edit, keeping the last good mapping:\n%s", path, exc)
        entries = cached[1] if cached is not None else {}
    svc.extras[_SOURCES_CACHE] = (stamp, entries)
    return entries


def _accepted(result: Ingested, extra: dict[str, Any] | None = None, status: int = 202) -> Response:
    """202 with the lead id, as POST /leads answers (Google Ads gets 200, the code its docs ask for)."""
    body: dict[str, Any] = {"id": result.lead_id, "status": result.status, **(extra or {})}
    if not result.created:
        body["duplicate"] = True
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Location"] = f"/leads/{result.lead_id}"
    return resp


def _run(svc: Services, sub: Submission, extra: dict[str, Any] | None = None, status: int = 202) -> Response:
    """Validate and ingest; 422 naming each bad field, nothing stored."""
    try:
        lead_in = validate(svc, sub)
    except ValidationError as exc:
        return json_error(422, "validation failed", field_errors(exc))
    sub.evidence = {"ip": request.remote_addr, "user_agent": request.user_agent.string}
    if lead_in.warnings:
        extra = {**(extra or {}), "warnings": lead_in.warnings}
    return _accepted(ingest(svc, sub, lead_in), extra, status)


def _json_object() -> dict[str, Any] | Response:
    """The body as a JSON object, or a 400 naming the body."""
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        return json_error(400, "body must be a JSON object", {"body": "invalid or non-object JSON"})
    return data


@bp.post("/google-ads")
def google_ads_lead():
    """A Google Ads lead form lead; google_key must equal GOOGLE_ADS_KEY (constant-time compare)."""
    svc = services()
    key = svc.settings.google_ads_key
    if not key:
        abort(404)
    data = _json_object()
    if isinstance(data, Response):
        return data
    given = data.get("google_key")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), key.encode()):
        return json_error(403, "forbidden: google_key does not match GOOGLE_ADS_KEY")
    sub = google_ads.submission(data, _entries(svc).get(google_ads.SOURCE))
    return _run(svc, sub, {"test": True} if sub.is_test else None, status=200)


@bp.get("/facebook")
def facebook_verify():
    """The Webhooks verification handshake: echo hub.challenge when hub.verify_token matches."""
    token = services().settings.facebook_verify_token
    if not token:
        abort(404)
    args = request.args
    given = args.get("hub.verify_token", "")
    if args.get("hub.mode") != "subscribe" or not hmac.compare_digest(given.encode(), token.encode()):
        return json_error(403, "forbidden: hub.verify_token does not match FACEBOOK_VERIFY_TOKEN")
    return Response(args.get("hub.challenge", ""), mimetype="text/plain")


@bp.post("/facebook")
def facebook_leadgen():
    """leadgen change notifications: check X-Hub-Signature-256, answer at once, fetch each lead in a job."""
    svc = services()
    s = svc.settings
    if not s.facebook_app_secret or not s.facebook_page_access_token:
        abort(404)
    raw = request.get_data(cache=True)
    if not facebook.signed(s.facebook_app_secret, raw, request.headers.get("X-Hub-Signature-256", "")):
        return json_error(403, "forbidden: X-Hub-Signature-256 does not match the body")
    data = _json_object()
    if isinstance(data, Response):
        return data
    changes = facebook.leadgen_changes(data)
    try:
        for value in changes:
            leadgen_id = str(value["leadgen_id"])
            svc.queue.enqueue(facebook.FETCH_JOB, leadgen_id, {k: str(v) for k, v in value.items()},
                              job_id=f"facebook-lead-{leadgen_id}", retry=facebook.FETCH_RETRY,
                              failure_ttl=30 * 86400)
    except redis.RedisError:
        # Not accepted: Facebook delivers the notification again, so no lead is lost.
        return json_error(503, "queue unavailable: retry")
    return jsonify({"received": len(changes)})


@bp.post("/<name>")
def mapped_form(name: str):
    """Any form, builder or Zapier step, JSON or form-encoded, mapped by its sources.yaml entry."""
    svc = services()
    entry = _entries(svc).get(name)
    if entry is None or entry.auth is None or not (secret := entry.auth.secret()):
        abort(404)
    if not _authorized(entry, secret):
        return json_error(403, f"forbidden: wrong credentials for source '{name}'")
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        payload: dict[str, Any] | Response = request.form.to_dict()
    else:
        payload = _json_object()
    if isinstance(payload, Response):
        return payload
    data, ids = apply(entry, payload)
    sub = Submission(source=name, data=data, external_id=ids.get("id"), campaign_id=ids.get("campaign"),
                     adgroup_id=ids.get("adgroup"), ad_id=ids.get("ad"), form_id=ids.get("form"),
                     fields={k: v for k, v in payload.items() if isinstance(v, str | int | float | bool)})
    return _run(svc, sub)


def _authorized(entry: Entry, secret: str) -> bool:
    """The bearer token, or the HMAC-SHA256 of the raw body (hex, optionally 'sha256='-prefixed)."""
    assert entry.auth is not None
    if entry.auth.bearer_env:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return bool(token) and hmac.compare_digest(token.encode(), secret.encode())
    given = request.headers.get(entry.auth.hmac_header or "", "").strip().removeprefix("sha256=")
    expected = hmac.new(secret.encode(), request.get_data(cache=True), hashlib.sha256).hexdigest()
    return bool(given) and hmac.compare_digest(given.lower().encode(), expected.encode())
