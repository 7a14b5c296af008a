"""Twilio webhooks answered once: a retried or replayed request gets the first answer, not a second effect.

Twilio marks every webhook request with I-Twilio-Idempotency-Token, the same on its retries; an inbound
text has its MessageSid. The first request claims the key in Redis, and its response is kept there
for REPLAY_TTL_S; a repeat waits for it (if the first is still running) and sends the same bytes.
Without Redis the webhooks still run: the answer webhook keys on CallSid in the database, a voice
turn on its number, and status callbacks only ever move forward.
"""

from __future__ import annotations

import json
import logging
import time

import redis
from flask import Response, current_app, request

log = logging.getLogger(__name__)

TOKEN_HEADER = "I-Twilio-Idempotency-Token"
REPLAY_TTL_S = 15 * 60  # Twilio retries within seconds; the cache must not grow with every turn forever
CLAIM_TTL_S = 60  # a request that died mid-way frees its key after this
WAIT_S = 5.0
PENDING = "pending"


def replay_key() -> str | None:
    """The key that makes two deliveries the same request, or None when there is nothing to key on."""
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if token:
        return f"twilio:replay:{request.path}:{token[:200]}"
    sid = request.form.get("MessageSid", "") if request.path == "/twilio/sms" else ""
    return f"twilio:replay:sms:{sid[:64]}" if sid else None


def once(view, *args, **kwargs) -> Response:  # noqa: ANN001, ANN002, ANN003
    """Run the (already signature-checked) view once per replay key; repeats get the stored response."""
    key = replay_key()
    if key is None:
        return current_app.make_response(view(*args, **kwargs))
    r = current_app.extensions["leadbot"].redis
    try:
        claimed = r.set(key, PENDING, nx=True, ex=CLAIM_TTL_S)
    except redis.RedisError as exc:
        log.warning("replay guard off for %s (redis: %s)", request.path, exc)
        return current_app.make_response(view(*args, **kwargs))
    if not claimed:
        return _stored(r, key)
    try:
        resp = current_app.make_response(view(*args, **kwargs))
    except BaseException:
        _forget(r, key)
        raise
    if 200 <= resp.status_code < 300:
        record = {"status": resp.status_code, "mimetype": resp.mimetype, "body": resp.get_data(as_text=True)}
        try:
            r.set(key, json.dumps(record), ex=REPLAY_TTL_S)
        except redis.RedisError as exc:
            log.warning("replay guard could not store %s (redis: %s)", request.path, exc)
    else:
        _forget(r, key)
    return resp


def _stored(r: redis.Redis, key: str) -> Response:
    """The first delivery's response, waiting briefly while it is still being made."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            raw = r.get(key)
        except redis.RedisError:
            raw = None
        if raw is not None and raw.decode() != PENDING:
            record = json.loads(raw)
            return Response(record["body"], status=record["status"], mimetype=record["mimetype"])
        if raw is None or time.monotonic() > deadline:
            # Gone (the first failed) or still running: a retry later will find the answer.
            resp = Response(json.dumps({"error": "this request is being handled; retry"}), status=503,
                            mimetype="application/json")
            resp.headers["Retry-After"] = "1"
            return resp
        time.sleep(0.05)


def _forget(r: redis.Redis, key: str) -> None:
    """Let a retry run the view again (the first delivery failed)."""
    try:
        r.delete(key)
    except redis.RedisError:
        pass
