"""Touches: every later contact with a lead (a retry call, a text, a nurture step, a callback) is a
row planned in the database and an RQ job scheduled for its time; each passes the gate when it runs.

A touch is planned once (unique per lead and key), run once (a conditional UPDATE claims it), and
cancelled or blocked with its reason in the timeline. Jobs are enqueued only after the planning
transaction commits, so a job never looks for a row it cannot see yet; the sweeper re-enqueues a
due touch whose job Redis lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import redis
from rq.job import JobStatus
from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.compliance import gate as compliance
from bot.runtime import pacing, queueing
from bot.runtime.services import Services
from bot.store import clock
from bot.store.tables import Attempt, Lead, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Reach, Touch, TouchStatus

log = logging.getLogger(__name__)

TOUCH_JOB = "bot.jobs.touches.run"
LOST_AFTER_S = 30  # a due touch still 'planned' this long after its time lost its job
MAX_LATE = timedelta(days=1)  # a touch later than this is closed, not sent (bot.jobs.stale_touches)
STUCK_AFTER_S = 2 * queueing.JOB_TIMEOUT_S + 10  # longer than any live send can take
WAITING_OR_RUNNING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
AMBIGUOUS = "ambiguous"  # attempt.error after a read timeout: Twilio may have created it
_PENDING = "leadbot.touch_jobs"
URGENT = {"callback", "voicemail_text"}


def touch_allowed(
    svc: Services, s: Session, lead: Lead, channel: str, now: datetime | None = None
) -> compliance.Verdict:
    """The one place a touch asks the compliance gate: opt-out, consent, calling rules, caps."""
    return compliance.check_touch(svc, s, lead, channel, now or clock.now())


def require_allowed(svc: Services, s: Session, lead: Lead, channel: str) -> None:
    """After a long wait for a send's TWILIO_CPS turn (pacing.recheck): the gate again; SendStopped
    when it now says no (a STOP during the wait, the window closing)."""
    verdict = touch_allowed(svc, s, lead, channel)
    if not verdict.allowed:
        raise pacing.SendStopped(verdict)


def reach(s: Session, lead_id: str) -> Reach:
    """The lead's cadence state, created on first use."""
    row = s.get(Reach, lead_id)
    if row is None:
        row = Reach(
            lead_id=lead_id,
            round=1,
            calls=0,
            next_index=0,
            failed_in_row=0,
            texted=False,
            no_sms=False,
            no_voice=False,
        )
        s.add(row)
        s.flush()
    return row


def _iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat() + "Z"


def plan(
    svc: Services, s: Session, lead_id: str, key: str, kind: str, channel: str, due: datetime, **fields: Any
) -> Touch | None:
    """Plan a touch (naive UTC `due`) unless one with this key exists; its job goes out on commit."""
    if s.scalar(select(Touch.id).where(Touch.lead_id == lead_id, Touch.key == key)) is not None:
        return None
    touch = Touch(
        lead_id=lead_id, key=key, kind=kind, channel=channel, due_at=due, status=TouchStatus.PLANNED, **fields
    )
    s.add(touch)
    s.flush()
    record(
        s,
        lead_id,
        "touch_planned",
        kind=kind,
        channel=channel,
        due=_iso(due),
        touch=touch.id,
        **({"step": fields["step"]} if fields.get("step") else {}),
    )
    schedule_on_commit(svc, s, touch.id, due, kind)
    return touch


def schedule_on_commit(svc: Services, s: Session, touch_id: str, due: datetime, kind: str) -> None:
    """Enqueue the touch's job once the session commits (never before: the row must be visible)."""
    pending = s.info.setdefault(_PENDING, [])
    if not pending and not s.info.get(_PENDING + ".hooked"):
        s.info[_PENDING + ".hooked"] = True
        event.listen(s, "after_commit", lambda sess: _flush_jobs(svc, sess))
        event.listen(s, "after_rollback", lambda sess: sess.info.pop(_PENDING, None))
    pending.append((touch_id, due, kind))


def _flush_jobs(svc: Services, s: Session) -> None:
    for touch_id, due, kind in s.info.pop(_PENDING, []):
        enqueue(svc, touch_id, due, kind)


def enqueue(svc: Services, touch_id: str, due: datetime, kind: str) -> bool:
    """Schedule the touch's job at `due` (naive UTC on leadbot's clock); False when Redis is down.

    A callback the lead asked for and the text after a voicemail go with fresh leads; retries and
    nurture take the low-priority queue (and the pacing limiter's spare slots).
    """
    real = due.replace(tzinfo=clock.now().tzinfo) - (clock.now() - clock.real_now())
    queue = svc.queue if kind in URGENT else svc.low_queue
    try:
        queue.enqueue_at(
            real,
            TOUCH_JOB,
            touch_id,
            job_id=f"touch-{touch_id}",
            retry=queueing.CONTACT_RETRY,
            result_ttl=3600,
            failure_ttl=7 * 86400,
        )
        return True
    except redis.RedisError as exc:  # the sweeper enqueues it when it is due
        log.warning("touch %s not scheduled (the sweeper will send it): %s", touch_id, exc)
        return False


def _end(s: Session, lead_id: str, status: str, reason: str, kinds: tuple[str, ...] | None) -> int:
    query = select(Touch).where(Touch.lead_id == lead_id, Touch.status == TouchStatus.PLANNED)
    if kinds:
        query = query.where(Touch.kind.in_(kinds))
    touches = s.scalars(query.order_by(Touch.due_at)).all()
    for t in touches:
        t.status, t.reason = status, reason
        record(
            s,
            lead_id,
            f"touch_{status}",
            kind=t.kind,
            channel=t.channel,
            due=_iso(t.due_at),
            reason=reason,
            touch=t.id,
        )
    return len(touches)


def cancel(s: Session, lead_id: str, reason: str, kinds: tuple[str, ...] | None = None) -> int:
    """Cancel the lead's planned touches (of `kinds`, or all) with the reason; returns how many."""
    return _end(s, lead_id, TouchStatus.CANCELLED, reason, kinds)


def block_all(s: Session, lead_id: str, reason: str) -> int:
    """An opt-out: every planned touch is blocked at once, each with the reason in the timeline."""
    return _end(s, lead_id, TouchStatus.BLOCKED, reason, None)


def claim(s: Session, touch_id: str) -> bool:
    """planned -> sending, exactly once across workers; committed."""
    res = s.execute(
        update(Touch)
        .where(Touch.id == touch_id, Touch.status == TouchStatus.PLANNED)
        .values(status=TouchStatus.SENDING, updated_at=utcnow())
    )
    s.commit()
    return res.rowcount == 1


def release_claim(s: Session, touch_id: str) -> None:
    """'sending' -> 'planned' after a send that failed unexpectedly (or whose worker died), so the
    job's retry or the sweeper sends it. An attempt left 'placing' may have reached Twilio: it is
    marked ambiguous, and the next try adopts what Twilio created before sending again."""
    try:
        s.execute(update(Touch).where(Touch.id == touch_id, Touch.status == TouchStatus.SENDING)
                  .values(status=TouchStatus.PLANNED, updated_at=utcnow()))
        s.execute(update(Attempt).where(Attempt.id == select(Touch.attempt_id).where(Touch.id == touch_id)
                                        .scalar_subquery(), Attempt.status == "placing")
                  .values(status="retry", error=AMBIGUOUS))
        s.commit()
    except SQLAlchemyError:  # the database is still away: the sweeper releases it later
        s.rollback()
        log.warning("touch %s: could not release its claim; the sweeper will", touch_id, exc_info=True)


def _sweep_stuck(svc: Services, s: Session, now: datetime) -> int:
    """Touches 'sending' longer than any send takes, whose job is no longer running or waiting to."""
    stuck = s.scalars(select(Touch.id).where(
        Touch.status == TouchStatus.SENDING, Touch.updated_at < now - timedelta(seconds=STUCK_AFTER_S)
    ).limit(200)).all()
    handed = 0
    for touch_id in stuck:
        if queueing.job_state(svc.redis, f"touch-{touch_id}", now) in WAITING_OR_RUNNING:
            continue
        release_claim(s, touch_id)
        touch = s.get_one(Touch, touch_id)
        if touch.status == TouchStatus.PLANNED and enqueue(svc, touch_id, now, touch.kind):
            record(s, touch.lead_id, "requeued", by="sweeper", touch=touch_id, was="sending")
            handed += 1
    return handed


def sweep_lost(svc: Services) -> int:
    """Re-enqueue due touches still 'planned' well past their time whose job is not in Redis, and
    touches stuck 'sending' (see _sweep_stuck)."""
    now = utcnow()
    with svc.sessions() as s:
        handed = _sweep_stuck(svc, s, now)
        due = s.scalars(
            select(Touch)
            .where(Touch.status == TouchStatus.PLANNED, Touch.due_at < now - timedelta(seconds=LOST_AFTER_S),
                   Touch.due_at >= now - MAX_LATE)
            .limit(200)
        ).all()
        for t in due:
            if queueing.job_lost(svc.redis, f"touch-{t.id}", now) and enqueue(svc, t.id, now, t.kind):
                record(s, t.lead_id, "requeued", by="sweeper", touch=t.id)
                handed += 1
        s.commit()
    return handed
