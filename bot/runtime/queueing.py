"""Redis connection and RQ queue; jobs are enqueued by import path so web never imports job code."""

from __future__ import annotations

import logging
import time
import weakref
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bot.runtime import pacing
from bot.settings import Settings

log = logging.getLogger(__name__)

CONTACT_JOB = "bot.jobs.dispatch.contact"
LOW_SUFFIX = "-low"
JOB_TIMEOUT_S = 30  # a stuck Twilio request must not starve the queue
STARTED_GRACE_S = 10  # past its timeout, a job still 'started' belongs to a dead worker
# Transient failures (5xx, 429, connection) back off: 1 s, 3 s, 10 s, 30 s, 60 s.
CONTACT_RETRY = Retry(max=5, interval=[1, 3, 10, 30, 60])


def connect(settings: Settings) -> redis.Redis:
    """A Redis client with short timeouts so a dead Redis fails fast instead of hanging intake.

    Every command leadbot sends outside RQ's own dequeue takes well under a millisecond, so a
    second without an answer means Redis is gone (RQ raises the timeout on the worker's own
    connection for its blocking dequeue).
    """
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set (leadbot run starts an embedded Valkey and sets it)")
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=30
    )


def make_queue(conn: redis.Redis, settings: Settings) -> Queue:
    """The high-priority queue: fresh leads and everything that cannot wait (handoffs)."""
    queue = Queue(settings.queue_name, connection=conn, default_timeout=JOB_TIMEOUT_S)
    queue.paced = settings.twilio_cps > 0  # enqueue_contact lines the lead up for its TWILIO_CPS turn
    return queue


def low_queue_name(settings: Settings) -> str:
    """The low-priority queue's name, e.g. 'leadbot-low'."""
    return settings.queue_name + LOW_SUFFIX


def make_low_queue(conn: redis.Redis, settings: Settings) -> Queue:
    """The low-priority queue: retries, nurture and backfill. Workers list it after the main one."""
    return Queue(low_queue_name(settings), connection=conn, default_timeout=JOB_TIMEOUT_S)


def enqueue_low(low_queue: Queue, func: str, *args: object, at: datetime | None = None,
                delay: timedelta | None = None, **options: object) -> Job:
    """Enqueue low-priority work (a retry, a nurture step, a backfill) by import path, now, at or after.

    Its sends wait for a free TWILIO_CPS slot and give way to any fresh lead (bot.runtime.pacing),
    and workers take it only when the main queue is empty. RQ options (job_id, retry, ...) pass through.
    """
    options.setdefault("result_ttl", 3600)
    options.setdefault("failure_ttl", 7 * 86400)
    if at is not None:
        return low_queue.enqueue_at(at, func, *args, **options)
    if delay is not None:
        return low_queue.enqueue_in(delay, func, *args, **options)
    return low_queue.enqueue(func, *args, **options)


def job_state(conn: redis.Redis, job_id: str, now: datetime) -> str:
    """RQ's status of a job, or 'missing' (not in Redis), or 'dead' (its worker died running it).

    A job still 'started' longer after its start than its timeout allows ran in a worker that died
    (SIGKILL, out of memory, a lost machine): a live worker's death penalty would have ended it. RQ
    notices such a job only at a maintenance pass, every 10 minutes; the sweepers act sooner.
    """
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return "missing"
    status = job.get_status()
    if status == JobStatus.STARTED and job.started_at is not None:
        started = job.started_at.astimezone(UTC).replace(tzinfo=None)
        if started < now - timedelta(seconds=(job.timeout or JOB_TIMEOUT_S) + STARTED_GRACE_S):
            log.warning("job %s started at %s and never ended: its worker died", job_id, started)
            return "dead"
    return status  # a JobStatus, which is a str


def job_lost(conn: redis.Redis, job_id: str, now: datetime) -> bool:
    """True when Redis has no trace of the job, or its worker died running it: enqueue it again.

    A *failed* job is not lost: it waits in RQ's failed registry for a person, rather than being
    retried by a sweeper on every pass.
    """
    return job_state(conn, job_id, now) in ("missing", "dead")


def contact_job_id(lead_id: str) -> str:
    """Deterministic job id, so the sweeper can see whether a lead's job is already in Redis."""
    return f"contact-{lead_id}"


def contact_meta(channel: str | None) -> dict[str, str]:
    """A contact job's meta: the lead's channel when known."""
    return {"channel": channel} if channel else {}


def sends_via_twilio(job: Job) -> bool:
    """Whether a contact job's first act may be a call or a text (unknown channel: it may)."""
    return job.meta.get("channel") != "email"


# Per Redis client: until when (monotonic) intake skips enqueueing after a failure.
_redis_down_until: weakref.WeakKeyDictionary[redis.Redis, float] = weakref.WeakKeyDictionary()
REDIS_DOWN_HOLD_S = 5.0


def enqueue_contact(queue: Queue, lead_id: str, skip_while_down: bool = False,
                    channel: str | None = None) -> bool:
    """Hand a committed lead to the workers; False (never an exception) when Redis is down.

    `channel`, when the caller knows it, goes in the job's meta: an email lead's job takes no
    TWILIO_CPS turn, so it is not lined up and its worker does not wait for one (see contact_meta).

    With `skip_while_down` (intake), a lead does not try Redis within REDIS_DOWN_HOLD_S of a
    failure on this client: each would otherwise wait out the timeouts again (a Redis that drops
    packets instead of refusing costs a second a lead), and the sweeper dispatches every lead left
    in 'received' once Redis is back.
    """
    conn = queue.connection
    if skip_while_down and time.monotonic() < _redis_down_until.get(conn, 0.0):
        return False
    try:
        # One MULTI/EXEC round trip: on its own, enqueue registers the queue in one transaction
        # and saves and pushes the job in a second.
        with queue.connection.pipeline() as pipe:
            job = queue.enqueue(
                CONTACT_JOB, lead_id, job_id=contact_job_id(lead_id), retry=CONTACT_RETRY,
                result_ttl=3600, failure_ttl=7 * 86400, pipeline=pipe, meta=contact_meta(channel),
            )
            if getattr(queue, "paced", False) and sends_via_twilio(job):  # its place: when it was accepted
                pacing.line_up(pipe, contact_job_id(lead_id), pacing.order_of(job.enqueued_at))
            pipe.execute()
        return True
    except redis.RedisError as exc:
        _redis_down_until[conn] = time.monotonic() + REDIS_DOWN_HOLD_S
        log.warning("enqueue failed for lead %s (the sweeper will dispatch it): %s", lead_id, exc)
        return False
