"""The optional first acknowledgement text (ACK_TEXT): "Thanks, we'll call you at 8:00", through the gate."""

from __future__ import annotations

import logging
from datetime import datetime

import redis
import requests
from twilio.base.exceptions import TwilioRestException

from bot.compliance import gate
from bot.runtime.queueing import enqueue_low
from bot.runtime.services import Services, current
from bot.store import clock
from bot.store.tables import Lead
from bot.store.timeline import EventType, record

log = logging.getLogger(__name__)

ACK = "Thanks, {first}! We got your request and will call you {when}. Reply STOP to opt out."


def enqueue_ack(svc: Services, lead_id: str, call_at: datetime | None) -> None:
    """Queue the acknowledgement once for a fresh lead (low priority: the call itself goes first)."""
    when = call_at.isoformat() if call_at else None
    try:
        enqueue_low(svc.low_queue, "bot.jobs.ack.send_ack", lead_id, when, job_id=f"ack-{lead_id}")
    except redis.RedisError as exc:  # a courtesy text must never cost the call itself
        log.warning("acknowledgement text for lead %s not queued: %s", lead_id, exc)


def when_text(lead: Lead, call_at: datetime | None, now: datetime) -> str:
    """'in a moment', 'at 8:00 AM' or 'at 8:00 AM on Friday', in the lead's local time."""
    if call_at is None or call_at <= now:
        return "in a moment"
    zone = gate.jurisdiction(lead, gate.DEFAULT_RULES).zones[0]
    local, today = call_at.astimezone(zone), now.astimezone(zone).date()
    at = f"at {local.strftime('%I:%M %p').lstrip('0')}"
    return at if local.date() == today else f"{at} on {local.strftime('%A')}"


def send_ack(lead_id: str, call_at: str | None = None) -> str:
    """RQ job: text the acknowledgement if the gate allows a text now; never later (it would be stale)."""
    svc = current()
    now = clock.now()
    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if lead is None:
            return "missing"
        verdict = gate.check_touch(svc, s, lead, "sms", now)
        if not verdict.allowed:
            record(s, lead.id, EventType.BLOCKED, reason=verdict.reason, rule=verdict.rule, touch="ack_text")
            s.commit()
            return "blocked"
        body = ACK.format(first=lead.first_name, when=when_text(lead, datetime.fromisoformat(call_at)
                                                                 if call_at else None, now))
        try:
            msg = svc.twilio.messages.create(to=lead.phone, from_=svc.settings.caller_id, body=body)
        except (TwilioRestException, requests.RequestException) as exc:  # a courtesy: logged, not retried
            reason = f"acknowledgement text: {exc}"[:500]
            record(s, lead.id, EventType.FAILED, reason=reason, touch="ack_text")
            s.commit()
            return "failed"
        record(s, lead.id, EventType.SMS_SENT, sid=msg.sid, kind="ack", body=body)
        s.commit()
        return msg.sid
