"""CRM webhooks out: the subscribers in WEBHOOKS_PATH, and emit(), the one call that records an event.

emit() writes one delivery row per subscriber in the caller's transaction and enqueues the
delivery jobs (bot.jobs.webhooks) only after that commits, on a queue of their own: a slow or
dead subscriber never holds up a call or another subscriber.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot.flows.yamlmarks import MarkedDict, MarkedList, parse_yaml, shown
from bot.store import clock
from bot.store.source_tables import DeliveryStatus, LeadSource, WebhookDelivery
from bot.store.tables import Lead, new_id, utcnow

log = logging.getLogger(__name__)

EVENTS = ("lead.received", "lead.contacted", "lead.qualified", "lead.disqualified", "lead.nurturing",
          "lead.handed_off", "lead.acknowledged", "lead.opted_out", "lead.failed")
DELIVER_JOB = "bot.jobs.webhooks.deliver"
# Exponential back-off over about 24 h (23.4 h in all): 15 s, 1 min, 5 min, 15 min, 1 h, 2 h, 4 h, 8 h, 8 h.
DELIVERY_RETRY = Retry(max=9, interval=[15, 60, 300, 900, 3600, 7200, 14400, 28800, 28800])
_CACHE = "crm_subscribers"
_PENDING = "crm_pending_deliveries"


class CrmConfigError(ValueError):
    """WEBHOOKS_PATH is unusable; the message names file:line for every problem."""


@dataclass(frozen=True)
class Subscriber:
    """One CRM endpoint: where to POST, which events, and the env var holding its signing secret."""

    url: str
    events: frozenset[str]
    secret_env: str

    def wants(self, type_: str) -> bool:
        """True when this subscriber takes events of this type."""
        return "*" in self.events or type_ in self.events


def load_subscribers(path: Path, environ: dict[str, str] | None = None) -> list[Subscriber]:
    """Read and check the subscribers file; raise CrmConfigError listing every problem with its line."""
    env = os.environ if environ is None else environ
    name = str(path)
    data, line, message = parse_yaml(path.read_text(encoding="utf-8"))
    if message:
        raise CrmConfigError(f"{name}:{line or 1}: {message}")
    problems: list[str] = []
    subs: list[Subscriber] = []
    if not isinstance(data, MarkedDict) or not isinstance(data.get("subscribers"), MarkedList):
        raise CrmConfigError(f"{name}:{getattr(data, 'line', 1)}: subscribers: required, a list of "
                             "subscribers")
    items = data["subscribers"]
    for i, item in enumerate(items):
        where = f"{name}:{items.line_of(i)}: subscribers[{i}]"
        if not isinstance(item, MarkedDict):
            problems.append(f"{where}: must be a mapping with url, events and secret_env")
            continue
        for key in sorted(set(item) - {"url", "events", "secret_env"}):
            problems.append(f"{name}:{item.line_of(key)}: subscribers[{i}].{key}: unknown key")
        url, events, secret_env = item.get("url"), item.get("events"), item.get("secret_env")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"{name}:{item.line_of('url')}: subscribers[{i}].url: required, an http(s) URL")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            problems.append(f"{name}:{item.line_of('events')}: subscribers[{i}].events: required, a list of "
                            f"event types or [\"*\"]")
            events = []
        for e in events:
            if e != "*" and e not in EVENTS:
                problems.append(f"{name}:{item.line_of('events')}: subscribers[{i}].events: unknown event "
                                f"{shown(e)} (one of {', '.join(EVENTS)} or *)")
        if not isinstance(secret_env, str) or not secret_env:
            problems.append(f"{name}:{item.line_of('secret_env')}: subscribers[{i}].secret_env: required, "
                            "the name of the environment variable that holds the signing secret")
        elif not env.get(secret_env):
            problems.append(f"{name}:{item.line_of('secret_env')}: subscribers[{i}].secret_env: "
                            f"{secret_env} is not set in the environment")
        subs.append(Subscriber(str(url), frozenset(str(e) for e in events), str(secret_env)))
    if problems:
        raise CrmConfigError("\n".join(problems))
    return subs


def subscribers(svc: Any, strict: bool = False) -> list[Subscriber]:
    """This process's subscribers, read once from WEBHOOKS_PATH (none when unset).

    Web and worker check the file at start (`strict`, which raises CrmConfigError). Anywhere else a
    broken file is logged and means no subscribers: a CRM event is never worth a lead's call.
    """
    subs = svc.extras.get(_CACHE)
    if subs is None:
        path = svc.settings.webhooks_path
        try:
            subs = load_subscribers(Path(path)) if path else []
        except (CrmConfigError, OSError) as exc:
            if strict:
                raise
            log.error("WEBHOOKS_PATH unusable, no CRM events are sent: %s", exc)
            subs = []
        svc.extras[_CACHE] = subs
    return subs


def webhook_queue(svc: Any) -> Queue:
    """The deliveries' own queue, which workers take after the contact queue."""
    return Queue(f"{svc.settings.queue_name}-webhooks", connection=svc.redis)


def lead_json(s: Session, lead: Lead) -> dict[str, Any]:
    """The lead as CRM events carry it, with every source it came from."""
    def iso(at: Any) -> str | None:
        return at.isoformat() + "Z" if at else None

    sources = s.scalars(select(LeadSource).where(LeadSource.lead_id == lead.id).order_by(LeadSource.id))
    return {
        "id": lead.id, "status": lead.status, "status_reason": lead.status_reason, "name": lead.name,
        "phone": lead.phone, "email": lead.email, "service": lead.service, "channel": lead.channel,
        "source": lead.source, "language": lead.language, "message": lead.message,
        "answers": lead.answers or {}, "created_at": iso(lead.created_at), "updated_at": iso(lead.updated_at),
        "consent": {"given": lead.consent, "at": iso(lead.consent_at), "text": lead.consent_text},
        "sources": [{"source": x.source, "external_id": x.external_id, "campaign_id": x.campaign_id,
                     "adgroup_id": x.adgroup_id, "ad_id": x.ad_id, "form_id": x.form_id, "is_test": x.is_test,
                     "at": iso(x.created_at)} for x in sources],
    }


def emit(svc: Any, s: Session, lead_id: str, type_: str) -> int:
    """Record a CRM event for every subscriber that takes it; delivered once `s` commits. Returns how many.

    Costs nothing without subscribers. Never raises on a bad lead id: an event is not worth a call.
    """
    wanted = [sub for sub in subscribers(svc) if sub.wants(type_)]
    if not wanted:
        return 0
    s.flush()  # Core UPDATEs and pending ORM changes alike must show in the snapshot
    lead = s.get(Lead, lead_id)
    if lead is None:
        log.error("CRM event %s for unknown lead %s", type_, lead_id)
        return 0
    s.refresh(lead)
    now, event_id = utcnow(), "evt_" + new_id()
    body = json.dumps({"id": event_id, "type": type_, "created_at": now.isoformat() + "Z",
                       "lead": lead_json(s, lead)}, separators=(",", ":"))
    ids = []
    for sub in wanted:
        delivery = WebhookDelivery(id=new_id(), event_id=event_id, event_type=type_, lead_id=lead_id,
                                   url=sub.url, secret_env=sub.secret_env, body=body, created_at=now,
                                   updated_at=now)
        s.add(delivery)
        ids.append(delivery.id)
    pending = s.info.get(_PENDING)
    if pending is None:
        pending = s.info[_PENDING] = []
        event.listen(s, "after_commit", lambda sess: _flush_pending(svc, sess))
        event.listen(s, "after_rollback", lambda sess: sess.info.get(_PENDING, []).clear())
    pending.extend(ids)
    return len(ids)


def emit_committed(svc: Any, lead_id: str, type_: str) -> int:
    """emit() in a transaction of its own, for paths that commit without an ORM session (intake)."""
    if not any(sub.wants(type_) for sub in subscribers(svc)):
        return 0
    with svc.sessions() as s:
        n = emit(svc, s, lead_id, type_)
        s.commit()
    return n


def _flush_pending(svc: Any, s: Session) -> None:
    """Enqueue the deliveries this commit made durable."""
    ids, s.info[_PENDING] = list(s.info.get(_PENDING, [])), []
    for delivery_id in ids:
        enqueue_delivery(svc, delivery_id)


def retry_delivery(svc: Any, delivery_id: str) -> bool:
    """Send a failing delivery again now, with fresh back-off retries; False when unknown or delivered.

    Its scheduled retry, if any, is dropped first so that it is not sent twice in a row.
    """
    with svc.sessions() as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None or d.status == DeliveryStatus.DELIVERED:
            return False
        d.status, d.updated_at = DeliveryStatus.PENDING, utcnow()
        s.commit()
    queue, job_id = webhook_queue(svc), f"webhook-{delivery_id}"
    ScheduledJobRegistry(queue=queue).remove(job_id)
    FailedJobRegistry(queue=queue).remove(job_id)
    return enqueue_delivery(svc, delivery_id)


def next_retry(svc: Any, delivery_id: str) -> datetime | None:
    """When RQ will try a pending delivery again (naive UTC), or None when nothing is scheduled."""
    try:
        at = ScheduledJobRegistry(queue=webhook_queue(svc)).get_scheduled_time(f"webhook-{delivery_id}")
    except NoSuchJobError:
        return None
    return clock.shifted(at).astimezone(UTC).replace(tzinfo=None)  # RQ schedules on real time


def enqueue_delivery(svc: Any, delivery_id: str, retry: Retry | None = DELIVERY_RETRY) -> bool:
    """Hand one delivery to the webhook workers; False when Redis is down (the sweep re-enqueues it)."""
    try:
        webhook_queue(svc).enqueue(DELIVER_JOB, delivery_id, job_id=f"webhook-{delivery_id}", retry=retry,
                                   job_timeout=60, result_ttl=3600, failure_ttl=30 * 86400)
        return True
    except redis.RedisError as exc:
        log.warning("webhook delivery %s not enqueued (swept later): %s", delivery_id, exc)
        return False
