"""Read models of the console's live board and lead page: newest leads with their rep and SLA state."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.handoff_tables import Handoff, HandoffStatus
from bot.store.readmodels import lead_view
from bot.store.tables import Event, Lead, LeadStatus, utcnow

BOARD_LIMIT = 100
# A lead still waiting for its first contact after this long is late (speed-to-lead's own target).
CONTACT_SLA_SECONDS = 60
WAITING = (LeadStatus.RECEIVED.value, LeadStatus.QUEUED.value)
CHOICES_TTL_S = 60.0
REP_SCAN = 500  # the rep filter looks at this many of the rep's newest handoffs


@dataclass(frozen=True)
class BoardFilter:
    """What the board shows; empty strings mean "any"."""

    status: str = ""
    source: str = ""
    service: str = ""
    rep: str = ""  # a rep's phone (the handoffs' stable key)


def board(
    session: Session, flt: BoardFilter, now: datetime | None = None, limit: int = BOARD_LIMIT
) -> list[dict[str, Any]]:
    """The newest leads matching the filter, each with its current rep and whether it is past its SLA."""
    now = now or utcnow()
    query = (
        select(
            Lead.id,
            Lead.name,
            Lead.status,
            Lead.source,
            Lead.service,
            Lead.channel,
            Lead.created_at,
            Lead.updated_at,
        )
        .order_by(Lead.created_at.desc())
        .limit(limit)
    )
    if flt.status:
        query = query.where(Lead.status == flt.status)
    if flt.source:
        query = query.where(Lead.source == flt.source)
    if flt.service:
        query = query.where(Lead.service == flt.service)
    if flt.rep:
        # The rep's newest handoffs first (index on rep_phone): filtering every lead by a subquery
        # walks the whole leads index when the rep has thousands of handoffs.
        theirs = (
            select(Handoff.lead_id)
            .where(Handoff.rep_phone == flt.rep)
            .order_by(Handoff.created_at.desc())
            .limit(REP_SCAN)
        )
        query = query.where(Lead.id.in_(list(session.scalars(theirs))))
    rows = session.execute(query).all()
    reps = _latest_handoffs(session, [r.id for r in rows])
    out = []
    for r in rows:
        h = reps.get(r.id)
        late = (r.status in WAITING and now - r.created_at > timedelta(seconds=CONTACT_SLA_SECONDS)) or (
            h is not None
            and h["status"] == HandoffStatus.OPEN.value
            and h["due_at"] is not None
            and h["due_at"] < now
        )
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "source": r.source,
                "service": r.service,
                "channel": r.channel,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "rep": h["rep_name"] if h else None,
                "handoff_status": h["status"] if h else None,
                "sla_at": _sla_at(r.status, r.created_at, h),
                "late": bool(late),
            }
        )
    return out


def _sla_at(status: str, created_at: datetime, h: dict[str, Any] | None) -> datetime | None:
    """When the lead turns late: its first-contact target, or its open handoff's deadline."""
    if status in WAITING:
        return created_at + timedelta(seconds=CONTACT_SLA_SECONDS)
    if h is not None and h["status"] == HandoffStatus.OPEN.value:
        return h["due_at"]
    return None


def _latest_handoffs(session: Session, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The newest handoff of each lead (one indexed query for the page's leads)."""
    if not lead_ids:
        return {}
    rows = session.execute(
        select(Handoff.lead_id, Handoff.rep_name, Handoff.status, Handoff.due_at, Handoff.created_at)
        .where(Handoff.lead_id.in_(lead_ids))
        .order_by(Handoff.created_at)
    )
    return {r.lead_id: {"rep_name": r.rep_name, "status": r.status, "due_at": r.due_at} for r in rows}


_choices_lock = threading.Lock()


def filter_choices(session: Session, cache: dict[str, Any]) -> dict[str, list[Any]]:
    """Values the filters offer (statuses, sources, services, reps), kept a minute in the caller's cache.

    The DISTINCTs scan every lead (~20 ms at 100,000); a new source reaching the list a minute late is fine.
    """
    with _choices_lock:
        hit = cache.get("choices")
        if hit and time.monotonic() - hit[0] < CHOICES_TTL_S:
            return hit[1]
    found = {
        "statuses": [s.value for s in LeadStatus],
        "sources": sorted(x for x in session.scalars(select(Lead.source).distinct()) if x),
        "services": sorted(x for x in session.scalars(select(Lead.service).distinct()) if x),
        "reps": sorted(
            session.execute(
                select(Handoff.rep_phone, Handoff.rep_name).group_by(Handoff.rep_phone, Handoff.rep_name)
            ).all(),
            key=lambda r: r[1],
        ),
    }
    with _choices_lock:
        cache["choices"] = (time.monotonic(), found)
    return found


def lead_detail(session: Session, lead_id: str) -> dict[str, Any] | None:
    """The API's lead view plus what the console shows besides: raw events and full handoff rows."""
    view = lead_view(session, lead_id)
    if view is None:
        return None
    events = session.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.at, Event.id))
    view["events"] = [{"type": e.type, "at": e.at, "data": e.data or {}} for e in events]
    handoffs = session.scalars(select(Handoff).where(Handoff.lead_id == lead_id).order_by(Handoff.created_at))
    view["handoff_rows"] = [
        {
            "id": h.id,
            "rep": h.rep_name,
            "phone": h.rep_phone,
            "mode": h.mode,
            "status": h.status,
            "reason": h.reason,
            "created_at": h.created_at,
            "acked_at": h.acked_at,
            "due_at": h.due_at,
            "details": h.details or {},
        }
        for h in handoffs
    ]
    return view


def handoff_and_lead(session: Session, handoff_id: str) -> tuple[Handoff, Lead] | None:
    """One handoff and its lead (for the rep's page), or None."""
    h = session.get(Handoff, handoff_id)
    if h is None:
        return None
    lead = session.get(Lead, h.lead_id)
    return (h, lead) if lead is not None else None


def recent_events(
    session: Session, types: tuple[str, ...], since: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest events of some types since a time, with their lead's name (for the health page)."""
    rows = session.execute(
        select(Event.lead_id, Event.type, Event.at, Event.data, Lead.name)
        .join(Lead, Lead.id == Event.lead_id)
        .where(Event.type.in_(types), Event.at >= since)
        .order_by(Event.at.desc())
        .limit(limit)
    )
    return [
        {"lead_id": r.lead_id, "type": r.type, "at": r.at, "data": r.data or {}, "name": r.name} for r in rows
    ]


def mail_outbox(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The newest mail kept when no SMTP server is configured."""
    from bot.store.handoff_tables import MailOutbox

    rows = session.scalars(select(MailOutbox).order_by(MailOutbox.created_at.desc()).limit(limit))
    return [
        {
            "id": m.id,
            "to": m.to_addrs,
            "cc": m.cc_addrs,
            "subject": m.subject,
            "body": m.body,
            "at": m.created_at,
            "lead_id": m.lead_id,
        }
        for m in rows
    ]
