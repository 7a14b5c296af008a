"""The event timeline: every step of a lead is one timestamped row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.tables import Event, utcnow


class EventType:
    """Names used in the timeline (free-form strings are allowed; these are the common ones)."""

    RECEIVED = "received"
    DUPLICATE = "duplicate"
    QUEUED = "queued"
    ENQUEUE_FAILED = "enqueue_failed"
    REQUEUED = "requeued"
    SCHEDULED = "scheduled"
    BLOCKED = "blocked"
    DIALING = "dialing"
    DIAL_RETRY = "dial_retry"
    DIAL_FAILED = "dial_failed"
    SMS_SENT = "sms_sent"
    EMAIL_SENT = "email_sent"
    CALL_STATUS = "call"  # prefixed: call.ringing, call.in-progress, call.completed, ...
    ANSWERED = "answered"
    MACHINE = "answering_machine"
    REPLY = "reply"
    ANSWER = "answer"
    OUTCOME = "outcome"
    QUALIFIED = "qualified"
    NURTURE = "nurture"
    DISQUALIFIED = "disqualified"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    FAILED = "failed"


def record(session: Session, lead_id: str, type_: str, at: datetime | None = None, **data: Any) -> Event:
    """Add one event to the session (the caller's transaction commits it)."""
    event = Event(lead_id=lead_id, type=type_, at=at or utcnow(), data=data)
    session.add(event)
    return event


def timeline(session: Session, lead_id: str) -> list[dict[str, Any]]:
    """A lead's events, oldest first, as JSON-ready dicts."""
    rows = session.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.at, Event.id))
    return [{"type": e.type, "at": e.at.isoformat() + "Z", **({"data": e.data} if e.data else {})} for e in rows]
