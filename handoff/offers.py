"""Offering a lead to a rep: matching with the database's inputs, the Handoff row, and its SLA."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from rq import Retry
from sqlalchemy.orm import Session

from bot.runtime.replinks import rep_link
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import Lead, new_id, utcnow
from bot.store.timeline import record
from handoff.defaults import ACK_HISTORY_DAYS, SEND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.matching import Match, NoRepError, match_rep, open_handoff_counts
from handoff.roster import DEFAULT_SLA_MINUTES, HandoffError, Rep, Roster
from handoff.scheduling import enqueue_after_commit
from handoff.scorecard import median_ack_seconds
from handoff.shifts import as_utc

log = logging.getLogger(__name__)

# A text that fails on a Twilio 5xx or a network error is retried; the backup email goes out regardless.
SEND_RETRY = Retry(max=3, interval=[5, 30, 120])


def naive(at: datetime) -> datetime:
    """Naive UTC, the way timestamps are stored."""
    return as_utc(at).replace(tzinfo=None)


def lead_of(session: Session, lead_id: str) -> Lead:
    """The lead a handoff or transfer belongs to (the foreign key guarantees it exists)."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise HandoffError(f"lead {lead_id} is gone")
    return lead


def lead_link(svc: Any, lead_id: str, handoff: Any = None) -> str:
    """Where a rep opens the lead: their signed, password-free page for a handoff, else the console's.

    The rep's link is stamped with the handoff's creation: its text, email and reminder share one link.
    """
    if handoff is not None and svc.settings.secret_key:
        return rep_link(svc.settings.base_url, svc.settings.secret_key, handoff.id, handoff.created_at)
    return f"{svc.settings.base_url}/console/leads/{lead_id}"


def sla_seconds(svc: Any, roster: Roster, rep: Rep) -> int:
    """Seconds to acknowledge: the team's SLA, else the roster's, else HANDOFF_SLA_SECONDS."""
    team = roster.team(rep.team)
    if (team and team.sla_minutes is not None) or roster.sla_minutes != DEFAULT_SLA_MINUTES:
        return roster.sla_seconds_for(rep)
    return int(svc.settings.handoff_sla_seconds)


def find_match(svc: Any, session: Session, roster: Roster, lead: Lead,
               now: datetime) -> tuple[Match | None, dict[str, Any]]:
    """Match a rep with open handoffs and response speed: (match, why), or (None, why) if nobody can."""
    try:
        speed = median_ack_seconds(session, since=now - timedelta(days=ACK_HISTORY_DAYS))
        match = match_rep(roster, lead, svc.redis, now=now, open_counts=open_handoff_counts(session),
                          ack_seconds=speed, default_region=svc.settings.default_region)
    except NoRepError as exc:
        return None, exc.why
    return match, match.why


def record_match(session: Session, lead: Lead, match: Match, mode: HandoffMode) -> None:
    """The match and its reasons in the timeline."""
    record(session, lead.id, Ev.MATCHED, rep=match.rep.name, mode=mode.value, rule=match.why.get("rule"),
           fallbacks=[r.name for r in match.fallbacks],
           available_at=match.available_at.isoformat() if match.available_at else None, why=match.why)


def offer(session: Session, lead: Lead, rep: Rep, mode: HandoffMode, *, answers: Mapping[str, str],
          queue: Iterable[str] = (), try_number: int = 1, reason: str | None = None,
          conference: str | None = None, offered_at: datetime | None = None,
          due_at: datetime | None = None) -> Handoff:
    """A new open handoff of ``lead`` to ``rep``; ``queue`` holds who gets it if they miss it."""
    handoff = Handoff(id=new_id(), lead_id=lead.id, rep_name=rep.name, rep_phone=rep.key, rep_email=rep.email,
                      mode=mode.value, status=HandoffStatus.OPEN.value, try_number=try_number,
                      conference=conference, reason=reason, created_at=naive(offered_at or utcnow()),
                      due_at=naive(due_at) if due_at else None,
                      details={"answers": dict(answers), "queue": [p for p in queue if p != rep.key]})
    session.add(handoff)
    return handoff


def offer_sms(svc: Any, session: Session, lead: Lead, rep: Rep, *, answers: Mapping[str, str],
              queue: Iterable[str] = (), reason: str | None = None, try_number: int = 1,
              at: datetime | None = None) -> Handoff:
    """An SMS handoff whose text and email go out now, or when the rep's shift starts (``at``)."""
    handoff = offer(session, lead, rep, HandoffMode.SMS, answers=answers, queue=queue, reason=reason,
                    try_number=try_number, offered_at=at)
    if at is not None:
        record(session, lead.id, Ev.SCHEDULED, rep=rep.name, handoff=handoff.id,
               starts_at=as_utc(at).isoformat())
    enqueue_after_commit(session, svc.queue, SEND_JOB, handoff.id, at=at, retry=SEND_RETRY)
    return handoff
