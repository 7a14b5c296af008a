"""The sweeper: finds work the DB says is pending but Redis lost, and hands it back to the queue.

Contact jobs here (a new lead's, a deferred or a re-contacted lead's); the SMS handoff's text and
escalation in `handoff.loststeps.sweep_lost` (a warm transfer heals itself from the hold webhook,
`handoff.transfer.heal`). Each pass also offers the unassigned list to reps now available
(`handoff.waiting.drain`), and CRM webhook deliveries Redis lost go back too
(`bot.jobs.webhooks.sweep_lost`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
from rq.job import JobStatus
from sqlalchemy import Select, select, update

from bot.channels.touches import sweep_lost as sweep_lost_touches
from bot.jobs.stale_touches import sweep_stale
from bot.jobs.webhooks import sweep_lost as sweep_lost_deliveries
from bot.runtime import queueing
from bot.runtime.queueing import JOB_TIMEOUT_S, contact_job_id, enqueue_contact
from bot.runtime.services import Services
from bot.store.tables import Attempt, Lead, LeadStatus, utcnow
from bot.store.timeline import EventType, record
from bot.store.touch_tables import contact_attempt
from handoff.alerts import sweep_lost as sweep_lost_alerts
from handoff.loststeps import sweep_lost as sweep_lost_handoffs
from handoff.waiting import drain as offer_waiting_leads

log = logging.getLogger(__name__)

LOCK_KEY = "leadbot:sweeper:lock"
RECEIVED_GRACE_S = 10  # a healthy queue dispatches in milliseconds; 10 s means it was lost
DUE_GRACE_S = 60  # RQ's scheduler moves a due job within a second or two
PLACING_STALE_S = 2 * JOB_TIMEOUT_S + 10  # longer than any live request can take
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def _job_alive(svc: Services, lead_id: str, now: datetime) -> bool:
    """True when Redis holds a contact job for the lead that is waiting or really running."""
    return queueing.job_state(svc.redis, contact_job_id(lead_id), now) in LIVE


def stale_attempts(now: datetime) -> Select[tuple[Attempt]]:
    """Attempts left 'placing' or 'retry' past any live job's time (index ix_attempts_status_updated)."""
    return select(Attempt).where(
        Attempt.status.in_(("placing", "retry")),
        Attempt.updated_at < now - timedelta(seconds=PLACING_STALE_S),
        contact_attempt(),  # a touch's attempt is its own job's (and the touch sweeper's) to retry
    ).limit(500)


def sweep(svc: Services) -> int:
    """Re-enqueue stranded leads and attempts; returns how many were handed back."""
    now = utcnow()
    handed = 0
    with svc.sessions() as s:
        stranded = s.scalars(select(Lead.id).where(
            Lead.status == LeadStatus.RECEIVED.value,
            Lead.created_at < now - timedelta(seconds=RECEIVED_GRACE_S),
        ).limit(500)).all()
        handing = [lead_id for lead_id in stranded if not _job_alive(svc, lead_id, now)]
        # A worker that died mid-request leaves 'placing': a call may exist, so check before redialling.
        for attempt in s.scalars(stale_attempts(now)).all():
            if _job_alive(svc, attempt.lead_id, now):
                continue
            if attempt.status == "placing":
                s.execute(update(Attempt).where(Attempt.id == attempt.id, Attempt.status == "placing")
                          .values(status="retry", error="ambiguous"))
            handing.append(attempt.lead_id)
        for lead_id in handing:
            if not enqueue_contact(svc.queue, lead_id):
                break  # Redis is still down; try again next sweep
            record(s, lead_id, EventType.REQUEUED, by="sweeper")
            handed += 1
        s.commit()
    if handed:
        log.info("sweeper re-enqueued %d lead(s)", handed)
    return handed


def sweep_due(svc: Services) -> int:
    """Re-enqueue 'scheduled' and 'queued' leads still waiting DUE_GRACE_S past their contact time
    whose job Redis no longer holds (a restart without persistence, a flush, an enqueue that met
    Redis down): without this, a lead deferred to the morning was never called, and nobody knew."""
    now = utcnow()
    handed = 0
    with svc.sessions() as s:
        due = s.execute(select(Lead.id, Lead.status, Lead.channel, Lead.contact_due_at).where(
            Lead.status.in_((LeadStatus.SCHEDULED.value, LeadStatus.QUEUED.value)),
            Lead.contact_due_at < now - timedelta(seconds=DUE_GRACE_S),
        ).limit(500)).all()
        for lead_id, status, channel, due_at in due:
            if _waiting_job(svc, lead_id, status, due_at, now):
                continue
            if not enqueue_contact(svc.queue, lead_id, channel=channel):
                break  # Redis is still down; try again next sweep
            record(s, lead_id, EventType.REQUEUED, by="sweeper", was=status)
            handed += 1
        s.commit()
    if handed:
        log.warning("sweeper re-enqueued %d scheduled or queued lead(s) whose job Redis lost", handed)
    return handed


def _waiting_job(svc: Services, lead_id: str, status: str, due_at: datetime, now: datetime) -> bool:
    """True when Redis holds the job that will contact the lead: a deferral's own (a job id with its
    due time, see dispatch._hold) or the plain contact job (a new submission, or this sweeper's)."""
    plain = queueing.job_state(svc.redis, contact_job_id(lead_id), now)
    if plain in LIVE or (status == LeadStatus.QUEUED.value and plain == JobStatus.FAILED):
        return True  # a failed job waits for a person in the console's failed list, as job_lost says
    if status != LeadStatus.SCHEDULED.value:
        return False
    own = f"{contact_job_id(lead_id)}-{int(due_at.replace(tzinfo=UTC).timestamp())}"
    return not queueing.job_lost(svc.redis, own, now)


def sweep_once_locked(svc: Services, interval_s: float) -> int | None:
    """Sweep leads and handoffs if no other process has this interval (shared Redis lock); None when
    skipped or Redis is down."""
    try:
        if not svc.redis.set(LOCK_KEY, "1", nx=True, ex=max(1, int(interval_s))):
            return None
    except redis.RedisError:
        return None
    # Last: the unassigned list is offered to reps who became free (a shift began, a handoff was
    # acknowledged, the roster was fixed) before newer leads take them.
    return (sweep(svc) + sweep_due(svc) + sweep_lost_handoffs(svc) + sweep_lost_alerts(svc)
            + sweep_lost_touches(svc) + sweep_stale(svc) + sweep_lost_deliveries(svc)
            + offer_waiting_leads(svc))
