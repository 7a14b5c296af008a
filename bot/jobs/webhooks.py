"""The CRM webhook delivery job: sign, POST, store the response; RQ retries with back-off until 2xx."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from datetime import timedelta
from typing import Any

import redis
import requests
from rq import get_current_job
from sqlalchemy import select

from bot.runtime import crm
from bot.runtime.queueing import job_lost
from bot.runtime.services import Services, current
from bot.store.source_tables import DeliveryStatus, WebhookDelivery
from bot.store.tables import utcnow

log = logging.getLogger(__name__)

# A subscriber gets 3 s to accept the connection and 10 s to answer; the job runs on the webhook
# queue, so even that wait holds up no call.
TIMEOUT = (3.05, 10.0)
KEEP_ATTEMPTS = 20
RESPONSE_CHARS = 1000
# After a timeout, the subscriber's other deliveries skip the wait for this long (each counts as a
# failed attempt and retries later): one slow endpoint costs one worker 10 s a minute, not every event.
SLOW_HOLD_S = 60
LOST_GRACE_S = 60  # a pending delivery untouched this long, with no job in Redis, was lost


class DeliveryFailed(RuntimeError):
    """The subscriber did not answer 2xx; RQ retries the job later."""

    def __init__(self, delivery_id: str, detail: str) -> None:
        super().__init__(f"webhook delivery {delivery_id}: {detail}")
        self.delivery_id = delivery_id


def signature(secret: str, body: str, at: int) -> str:
    """The Leadbot-Signature header: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">."""
    mac = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def deliver(delivery_id: str) -> str:
    """RQ job: POST one event to one subscriber. Raises DeliveryFailed (RQ retries) while retries are left."""
    return attempt(current(), delivery_id, retry=True)


def attempt(svc: Services, delivery_id: str, retry: bool = False) -> str:
    """One delivery attempt, recorded; with `retry`, a failure raises while the job has retries left."""
    with svc.sessions() as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None or d.status == DeliveryStatus.DELIVERED:
            return "skipped"
        code, text, error, started = None, None, None, time.monotonic()
        secret = os.environ.get(d.secret_env, "")
        if not secret:
            error = f"{d.secret_env} is not set: not sent unsigned"
        elif _held_back(svc, d.url):
            error = f"held back: {d.url} timed out less than {SLOW_HOLD_S} s ago"
        else:
            headers = {"Content-Type": "application/json", "User-Agent": "leadbot-webhooks/1",
                       "Leadbot-Signature": signature(secret, d.body, int(time.time())),
                       "Leadbot-Event-Id": d.event_id, "Leadbot-Event-Type": d.event_type}
            try:
                resp = requests.post(d.url, data=d.body.encode(), headers=headers, timeout=TIMEOUT,
                                     allow_redirects=False)
                code, text = resp.status_code, resp.text[:RESPONSE_CHARS]
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"[:RESPONSE_CHARS]
                if isinstance(exc, requests.Timeout):
                    _hold_back(svc, d.url)
        ok = code is not None and 200 <= code < 300
        now = utcnow()
        entry: dict[str, Any] = {"at": now.isoformat() + "Z", "code": code,
                                 "ms": round((time.monotonic() - started) * 1000)}
        if error:
            entry["error"] = error
        d.attempts += 1
        d.last_status_code, d.last_response, d.last_error = code, text, error
        d.log = [*(d.log or []), entry][-KEEP_ATTEMPTS:]
        d.updated_at = now
        left = _retries_left() if retry else 0
        if ok:
            d.status, d.delivered_at = DeliveryStatus.DELIVERED, now
        else:
            d.status = DeliveryStatus.PENDING if left > 0 else DeliveryStatus.FAILED
        s.commit()
        if ok:
            return "delivered"
        detail = error or f"HTTP {code}"
        if left > 0:
            raise DeliveryFailed(delivery_id, detail)
        log.error("webhook delivery %s to %s failed for good after %d attempts: %s", delivery_id, d.url,
                  d.attempts, detail)
        return "failed"


def _slow_key(url: str) -> str:
    return "leadbot:webhook-slow:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def _held_back(svc: Services, url: str) -> bool:
    """True while a recent timeout holds this subscriber's deliveries back (False when Redis is down)."""
    try:
        return bool(svc.redis.exists(_slow_key(url)))
    except redis.RedisError:
        return False


def _hold_back(svc: Services, url: str) -> None:
    """Remember that this subscriber timed out."""
    try:
        svc.redis.set(_slow_key(url), "1", ex=SLOW_HOLD_S)
    except redis.RedisError:
        pass  # without Redis the next delivery simply tries again


def sweep_lost(svc: Services) -> int:
    """Enqueue again the pending deliveries Redis lost (down at emit, or data lost); returns how many."""
    now = utcnow()
    with svc.sessions() as s:
        ids = s.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.updated_at < now - timedelta(seconds=LOST_GRACE_S),
        ).order_by(WebhookDelivery.updated_at).limit(200)).all()
    handed = 0
    for delivery_id in ids:
        if job_lost(svc.redis, f"webhook-{delivery_id}", now):
            if not crm.enqueue_delivery(svc, delivery_id):
                break  # Redis is still down
            handed += 1
    if handed:
        log.info("sweeper re-enqueued %d webhook deliveries", handed)
    return handed


def _retries_left() -> int:
    """How many RQ retries this job still has (0 outside a worker)."""
    job = get_current_job()
    return int(job.retries_left or 0) if job is not None else 0
