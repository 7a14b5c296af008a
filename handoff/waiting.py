"""The unassigned list: qualified leads nobody could take now, and offering them first when a rep can.

A lead goes on the list when no rep can be offered it now: the roster is unusable, nobody sells
the service, every matched rep is off shift, or every one is at capacity. The managers are
emailed and texted at once (``ladder.report_unassigned``). The list is drained oldest first by
every sweep, at the next shift's start, and before any new lead is matched, so a rep who becomes
available (a shift starts, a handoff is acknowledged, the roster is fixed) gets the waiting leads
before newer ones. A conditional UPDATE of ``assigned_at`` offers each lead exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rq import Retry
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.runtime import crm
from bot.store.handoff_tables import HandoffMode, WaitingLead
from bot.store.tables import Lead, LeadStatus, utcnow
from bot.store.timeline import record
from handoff.defaults import DRAIN_JOB, UNASSIGNED_JOB
from handoff.events import HandoffEvent as Ev
from handoff.matching import NoRepError, match_rep, open_handoff_counts
from handoff.notify import elapsed
from handoff.offers import naive, offer_sms, record_match
from handoff.roster import HandoffError, Roster
from handoff.roster_cache import roster_for
from handoff.scheduling import enqueue_after_commit

log = logging.getLogger(__name__)

ALERT_RETRY = Retry(max=3, interval=[10, 60, 300])
DRAIN_BATCH = 50  # waiting leads looked at per drain, oldest first
# A lead still waiting in these statuses is offered; any other status means it withdrew or was handled.
OPEN_LEAD = (LeadStatus.QUALIFIED.value,)


def reason_from(why: Mapping[str, Any], service: str | None) -> str:
    """Why nobody can take the lead now, in words, from matching's ``why``."""
    reps = {name: entry["filters"] for name, entry in (why.get("reps") or {}).items()}
    willing = {name: f for name, f in reps.items() if f["active"] and f["service"]}
    if not willing:
        return f"no active salesperson sells '{service or 'any service'}'"
    full = [name for name, f in willing.items() if f["on_shift"] and not f["capacity"]]
    if full:
        return "every matched rep is at capacity (" + ", ".join(full) + ")"
    return "every matched rep is off shift"


def put_on_list(svc: Any, s: Session, lead: Lead, reason: str, why: Mapping[str, Any] | None = None,
                answers: Mapping[str, Any] | None = None, next_shift: datetime | None = None) -> None:
    """Nobody can take the lead now: keep it on the unassigned list and tell the managers at once."""
    log.warning("lead %s: no rep now: %s", lead.id, reason)
    row = s.get(WaitingLead, lead.id)
    details = {"answers": dict(answers or {}), "why": dict(why or {})}
    if row is None:
        s.add(WaitingLead(lead_id=lead.id, reason=reason[:1000], details=details, since=utcnow()))
    else:  # back on the list (e.g. qualified again): waiting since it first waited
        row.reason, row.details, row.assigned_at, row.assigned_to = reason[:1000], details, None, None
    record(s, lead.id, Ev.UNASSIGNED, reason=reason, why=dict(why or {}),
           next_shift=next_shift.isoformat() if next_shift else None)
    lead.status_reason = f"unassigned: {reason}"[:500]
    enqueue_after_commit(s, svc.queue, UNASSIGNED_JOB, lead.id, retry=ALERT_RETRY)
    if next_shift is not None:  # the first rep's shift starts: offer the waiting leads then
        enqueue_after_commit(s, svc.queue, DRAIN_JOB, naive(next_shift).strftime("%Y%m%dT%H%M"),
                             at=next_shift)


def _can_take_now(roster: Roster, lead: Lead, counts: Mapping[str, int], now: datetime) -> bool:
    """Someone could be offered the lead now (checked first, so a waiting lead turns no rotation)."""
    return any(rep.active and rep.offers(lead.service) and (rep.hours is None or rep.hours.is_open(now))
               and (rep.capacity is None or counts.get(rep.key, 0) < rep.capacity)
               for rep in roster.salespeople)


def offer_waiting(svc: Any, s: Session, now: datetime | None = None, roster: Roster | None = None) -> int:
    """Offer waiting leads, oldest first, to reps available now; returns how many were offered."""
    now = now or utcnow()
    rows = list(s.scalars(select(WaitingLead).where(WaitingLead.assigned_at.is_(None))
                          .order_by(WaitingLead.since).limit(DRAIN_BATCH)))
    if not rows:
        return 0
    try:
        roster = roster or roster_for(svc)
    except HandoffError:
        return 0  # still unusable; the managers were told
    offered = 0
    for row in rows:
        lead = s.get(Lead, row.lead_id)
        if lead is None or lead.status not in OPEN_LEAD:
            _close(s, row, now, f"withdrawn ({lead.status if lead else 'deleted'})")
            continue
        if not _can_take_now(roster, lead, open_handoff_counts(s), now):
            continue
        try:
            match = match_rep(roster, lead, svc.redis, now=now, open_counts=open_handoff_counts(s),
                              default_region=svc.settings.default_region)
        except NoRepError:
            continue
        if not match.immediate or not _close(s, row, now, match.rep.name):
            continue
        record_match(s, lead, match, HandoffMode.SMS)
        crm.emit(svc, s, lead.id, "lead.handed_off")
        waited = elapsed(row.since, now)
        record(s, lead.id, Ev.OFFERED_FROM_LIST, rep=match.rep.name, waited=waited, reason=row.reason)
        lead.status_reason = None
        offer_sms(svc, s, lead, match.rep, answers=row.details.get("answers") or {},
                  queue=[r.key for r in match.fallbacks], reason=f"Waited {waited} for a free rep")
        offered += 1
    return offered


def _close(s: Session, row: WaitingLead, now: datetime, to: str) -> bool:
    """Take the lead off the list; False when another process already did."""
    res = s.execute(update(WaitingLead).where(WaitingLead.lead_id == row.lead_id,
                                              WaitingLead.assigned_at.is_(None))
                    .values(assigned_at=now, assigned_to=to[:120]))
    return res.rowcount == 1


def drain(svc: Any, now: datetime | None = None) -> int:
    """One pass over the unassigned list in its own transaction (the sweeper and the shift-start job)."""
    with svc.sessions() as s:
        offered = offer_waiting(svc, s, now)
        s.commit()
    if offered:
        log.info("offered %d waiting lead(s) to reps now available", offered)
    return offered


def unassigned_leads(s: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """The unassigned list, oldest first, for GET /reports/unassigned and the console."""
    now = now or utcnow()
    rows = s.execute(select(WaitingLead, Lead).join(Lead, Lead.id == WaitingLead.lead_id)
                     .where(WaitingLead.assigned_at.is_(None)).order_by(WaitingLead.since))
    return [{"lead_id": lead.id, "name": lead.name, "phone": lead.phone, "service": lead.service,
             "status": lead.status, "reason": w.reason, "since": w.since.isoformat() + "Z",
             "waiting_seconds": int((naive(now) - w.since).total_seconds()),
             "answers": (w.details or {}).get("answers") or {}} for w, lead in rows]
