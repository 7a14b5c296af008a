"""Handoff steps Redis lost: the sweepers find them in the database and enqueue them again.

The SMS handoff's text and escalation (which move the lead), its backup email and its reminder.
Each job claims its step first (see handoff.ladder), so one that races the original does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bot.runtime.queueing import job_lost
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import utcnow
from handoff.defaults import EMAIL_JOB, ESCALATE_JOB, REMIND_JOB, SEND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.ladder import EMAIL_RETRY, LOST_GRACE_S, _already
from handoff.offers import SEND_RETRY
from handoff.scheduling import enqueue, job_id

log = logging.getLogger(__name__)

def lost_steps(now: datetime) -> list[tuple[str, Select[tuple[str]]]]:
    """Open SMS handoffs whose next step is overdue: a text never sent, a deadline never escalated.

    Offer times are when a handoff is due to go out (a next-shift one is offered at the shift's
    start), so neither query picks one up early. Both use ix_handoffs_status_due.
    """
    cutoff = now - timedelta(seconds=LOST_GRACE_S)
    unsent = (Handoff.due_at.is_(None), Handoff.created_at < cutoff)
    unescalated = (Handoff.due_at < cutoff, Handoff.escalated_at.is_(None))
    return [
        (SEND_JOB, select(Handoff.id).where(*_OPEN_SMS, *unsent).limit(500)),
        (ESCALATE_JOB, select(Handoff.id).where(*_OPEN_SMS, *unescalated).limit(500)),
    ]


_OPEN_SMS = (Handoff.status == HandoffStatus.OPEN.value, Handoff.mode == HandoffMode.SMS.value)


def _lost_followups(s: Session, now: datetime) -> list[tuple[str, str]]:
    """Texted, still-open handoffs missing their backup email, or their reminder past half the SLA.

    Only open handoffs count (a rep holds a few at a time), so they are read whole. The offer time
    stands in for the text's: a text that needed retries went later, which makes these look due
    early, but they act only on a job missing from Redis, and a job still waiting there is not.
    """
    cutoff = now - timedelta(seconds=LOST_GRACE_S)
    texted = s.scalars(select(Handoff).where(*_OPEN_SMS, Handoff.due_at > now).limit(500))
    steps = []
    for h in texted:
        if h.created_at < cutoff and not _already(s, h, Ev.EMAIL_SENT, "handoff"):
            steps.append((EMAIL_JOB, h.id))
        if h.reminded_at is None and h.created_at + (h.due_at - h.created_at) / 2 < cutoff:
            steps.append((REMIND_JOB, h.id))
    return steps


def sweep_lost(svc: Any, now: datetime | None = None) -> int:
    """Re-enqueue the handoff steps Redis lost (it was down when they were queued, or lost its data).

    The text and the escalation, which move the lead, and the backup email and the reminder.
    Only a job missing from Redis, or left 'started' by a dead worker, counts as lost: a failed
    one waits in RQ's failed registry for a person rather than failing again every sweep. Each job
    claims its step first (a conditional UPDATE, or the email's event), so one that races the
    original does nothing.
    """
    now = now or utcnow()
    with svc.sessions() as s:
        steps = [(func, hid) for func, query in lost_steps(now) for hid in s.scalars(query)]
        steps += _lost_followups(s, now)
    handed = 0
    for func, handoff_id in steps:
        if not job_lost(svc.redis, job_id(func, handoff_id), now):
            continue
        retry = {SEND_JOB: SEND_RETRY, EMAIL_JOB: EMAIL_RETRY}.get(func)
        if not enqueue(svc.queue, func, handoff_id, retry=retry):
            return handed  # Redis is still down; the next sweep tries again
        log.warning("handoff %s: %s was lost from Redis; enqueued again", handoff_id, func)
        handed += 1
    return handed
