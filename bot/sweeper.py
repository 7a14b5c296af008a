"""The sweeper: finds work the DB says is pending but Redis lost, and hands it back to the queue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import Select, select, update

from bot.models import Attempt, Lead, LeadStatus, utcnow
from bot.queueing import JOB_TIMEOUT_S, contact_job_id, enqueue_contact
from bot.services import Services
from bot.timeline import EventType, record

log = logging.getLogger(__name__)

LOCK_KEY = "leadbot:sweeper:lock"
RECEIVED_GRACE_S = 10  # a healthy queue dispatches in milliseconds; 10 s means it was lost
PLACING_STALE_S = 2 * JOB_TIMEOUT_S + 10  # longer than any live request can take
STARTED_GRACE_S = 10  # past its timeout, a job still 'started' belongs to a dead worker
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def _job_alive(svc: Services, lead_id: str, now: datetime) -> bool:
    """True when Redis holds a contact job for the lead that is waiting or really running.

    A job still 'started' longer after its start than its timeout allows ran in a worker that
    died (SIGKILL, out of memory, a lost machine): a live worker's death penalty would have ended
    it. RQ notices such a job only at a maintenance pass (every 10 minutes), so the sweeper treats
    it as dead after the timeout plus a grace instead of leaving the lead waiting that long.
    """
    try:
        job = Job.fetch(contact_job_id(lead_id), connection=svc.redis)
    except NoSuchJobError:
        return False
    status = job.get_status()
    if status == JobStatus.STARTED and job.started_at is not None:
        started = job.started_at.astimezone(UTC).replace(tzinfo=None)
        if started < now - timedelta(seconds=(job.timeout or JOB_TIMEOUT_S) + STARTED_GRACE_S):
            log.warning("contact job for lead %s started at %s and never ended: its worker died",
                        lead_id, started)
            return False
    return status in LIVE


def stale_attempts(now: datetime) -> Select[tuple[Attempt]]:
    """Attempts left 'placing' or 'retry' past any live job's time (index ix_attempts_status_updated)."""
    return select(Attempt).where(
        Attempt.status.in_(("placing", "retry")),
        Attempt.updated_at < now - timedelta(seconds=PLACING_STALE_S),
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
        # A worker that died mid-request leaves 'placing': a call may exist, so check before redialling.
        stale = s.scalars(stale_attempts(now)).all()
        checked = []  # stale attempts' leads: their job was just found dead, no need to look again
        for attempt in stale:
            if _job_alive(svc, attempt.lead_id, now):
                continue
            if attempt.status == "placing":
                s.execute(update(Attempt).where(Attempt.id == attempt.id, Attempt.status == "placing")
                          .values(status="retry", error="ambiguous"))
            checked.append(attempt.lead_id)
        for lead_id in [*stranded, *checked]:
            if lead_id not in checked and _job_alive(svc, lead_id, now):
                continue
            if not enqueue_contact(svc.queue, lead_id):
                break  # Redis is still down; try again next sweep
            record(s, lead_id, EventType.REQUEUED, by="sweeper")
            handed += 1
        s.commit()
    if handed:
        log.info("sweeper re-enqueued %d lead(s)", handed)
    return handed


def sweep_once_locked(svc: Services, interval_s: float) -> int | None:
    """Sweep if no other process has this interval (shared Redis lock); None when skipped or down."""
    try:
        if not svc.redis.set(LOCK_KEY, "1", nx=True, ex=max(1, int(interval_s))):
            return None
    except redis.RedisError:
        return None
    return sweep(svc)
