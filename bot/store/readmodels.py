"""Read models: the JSON shape of a lead for the API and the console."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.tables import Attempt, Conversation, Event, Lead, LeadStatus
from bot.store.timeline import EventType, timeline
from bot.store.touch_tables import nurture_view, touch_view


def _iso(dt: Any) -> str | None:
    """ISO-8601 UTC or None."""
    return dt.isoformat() + "Z" if dt else None


def next_contact_at(session: Session, lead: Lead) -> str | None:
    """When a scheduled lead will be contacted: the latest deferral's time (None unless scheduled)."""
    if lead.status != LeadStatus.SCHEDULED.value:
        return None
    at = session.scalar(select(Event.data).where(Event.lead_id == lead.id, Event.type == EventType.SCHEDULED)
                        .order_by(Event.at.desc(), Event.id.desc()).limit(1))
    return (at or {}).get("not_before")


def lead_view(session: Session, lead_id: str) -> dict[str, Any] | None:
    """Everything known about one lead, or None."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        return None
    from bot.store.handoff_tables import Handoff

    attempts = session.scalars(select(Attempt).where(Attempt.lead_id == lead_id).order_by(Attempt.number))
    convs = session.scalars(select(Conversation).where(Conversation.lead_id == lead_id)
                            .order_by(Conversation.created_at))
    handoffs = session.scalars(select(Handoff).where(Handoff.lead_id == lead_id).order_by(Handoff.created_at))
    return {
        "id": lead.id,
        "status": lead.status,
        "status_reason": lead.status_reason,
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "service": lead.service,
        "channel": lead.channel,
        "source": lead.source,
        "language": lead.language,
        "timezone": lead.timezone,
        "state": lead.state,
        "zip": lead.zip,
        "next_contact_at": next_contact_at(session, lead),
        "created_at": _iso(lead.created_at),
        "consent": {
            "given": lead.consent, "at": _iso(lead.consent_at), "ip": lead.consent_ip,
            "user_agent": lead.consent_user_agent, "page_url": lead.consent_page_url, "text": lead.consent_text,
        },
        "answers": lead.answers or {},
        "attempts": [
            {"number": a.number, "channel": a.channel, "status": a.status, "call_status": a.call_status,
             "sid": a.provider_sid, "error": a.error, "created_at": _iso(a.created_at)}
            for a in attempts
        ],
        "conversations": [
            {"id": c.id, "channel": c.channel, "flow": c.flow_id, "flow_version": c.flow_version,
             "open": c.open, "outcome": c.outcome}
            for c in convs
        ],
        "handoff": [
            {"id": h.id, "rep": h.rep_name, "mode": h.mode, "status": h.status, "try": h.try_number,
             "created_at": _iso(h.created_at), "acked_at": _iso(h.acked_at), "reason": h.reason}
            for h in handoffs
        ],
        "touches": touch_view(session, lead_id),
        "nurture": nurture_view(session, lead_id),
        "timeline": timeline(session, lead_id),
    }
