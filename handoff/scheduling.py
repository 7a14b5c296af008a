"""Enqueue handoff jobs only once the caller's transaction commits, and cancel them on acknowledgement.

A job enqueued before its rows are committed can run first and find nothing, so every
enqueue made while a session is open waits for that session's commit (and is dropped
on rollback). Every job checks the database before acting, so a cancellation that
fails (Redis down) only costs a no-op run later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.store import clock
from handoff.defaults import JOB_IDS
from handoff.shifts import as_utc

log = logging.getLogger(__name__)

_PENDING = "handoff_after_commit"


def job_id(func: str, key: str) -> str:
    """The deterministic id of one job for one handoff or transfer."""
    return JOB_IDS[func].format(key)


def after_commit(session: Session, action: Callable[[], Any]) -> None:
    """Run ``action`` after ``session`` commits; forget it if the session rolls back."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending.append(action)


def _run_pending(session: Session) -> None:
    """Run what waited for this commit, in order."""
    actions, session.info[_PENDING] = session.info.get(_PENDING, []), []
    for action in actions:
        action()


def _drop_pending(session: Session) -> None:
    """A rolled-back transaction enqueues nothing."""
    session.info[_PENDING] = []


def enqueue(queue: Queue, func: str, key: str, *, at: datetime | None = None, delay: float | None = None,
            retry: Retry | None = None) -> bool:
    """Enqueue ``func(key)`` now, at ``at``, or after ``delay`` seconds; False (logged) when Redis is down."""
    options: dict[str, Any] = {"job_id": job_id(func, key), "result_ttl": 3600, "failure_ttl": 7 * 86400,
                               "retry": retry}
    if at is not None:  # `at` is on leadbot's clock (moved in tests); RQ's scheduler runs on real time
        at = as_utc(at) - (clock.now() - clock.real_now())
    try:
        if at is not None and at > datetime.now(UTC):
            queue.enqueue_at(at, func, key, **options)
        elif delay:
            queue.enqueue_in(timedelta(seconds=delay), func, key, **options)
        else:
            queue.enqueue(func, key, **options)
        return True
    except redis.RedisError as exc:
        log.warning("could not enqueue %s for %s: %s", func, key, exc)
        return False


def enqueue_after_commit(session: Session, queue: Queue, func: str, key: str, **options: Any) -> None:
    """``enqueue`` once the session's rows are visible to workers."""
    after_commit(session, lambda: enqueue(queue, func, key, **options))


def cancel(connection: redis.Redis, *funcs_and_keys: tuple[str, str]) -> int:
    """Delete queued or scheduled jobs; returns how many existed. Never raises on Redis trouble."""
    gone = 0
    for func, key in funcs_and_keys:
        try:
            Job.fetch(job_id(func, key), connection=connection).delete()
            gone += 1
        except NoSuchJobError:
            continue
        except redis.RedisError as exc:  # the job will run and find nothing to do
            log.warning("could not cancel %s for %s: %s", func, key, exc)
    return gone
