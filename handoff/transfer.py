"""The live transfer's state machine, driven by Twilio webhooks and status callbacks.

A Transfer goes holding -> accepted -> connected -> ended; or holding/accepted -> abandoned
(the prospect hung up, the lead goes to SMS); or holding -> failed (nobody accepted after
the allowed tries, the prospect is told when to expect a call, the lead goes to SMS).
Each rep tried is one warm_transfer Handoff: open -> acked | declined | cancelled.
Every move is a conditional UPDATE from the expected state, so a callback that arrives
twice or late matches no row and changes nothing. No Twilio REST call happens here:
anything that needs one is an RQ job (``handoff.legs``) enqueued after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import redis
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from bot.runtime import crm
from bot.runtime.queueing import job_lost
from bot.store.handoff_tables import (
    WAITING_STATUSES,
    Handoff,
    HandoffMode,
    HandoffStatus,
    Transfer,
    TransferStatus,
)
from bot.store.tables import Lead, LeadStatus, new_id, utcnow
from bot.store.timeline import record
from handoff.defaults import (
    ACCEPTED_JOB,
    DEFAULT_RING_SECONDS,
    DIAL_JOB,
    DIAL_STALE_SECONDS,
    DIALING,
    END_HOLD_JOB,
    ESCALATE_JOB,
    HANG_UP_JOB,
    REMIND_JOB,
    SEND_JOB,
    WATCH_JOB,
    WATCHDOG_GRACE_SECONDS,
)
from handoff.events import HandoffEvent as Ev
from handoff.notify import hung_up_reason
from handoff.offers import SEND_RETRY, lead_of, offer, offer_sms, sla_seconds
from handoff.roster_cache import rep_for, roster_for
from handoff.scheduling import after_commit, cancel, enqueue, enqueue_after_commit, job_id
from handoff.twiml import nobody_free

NOBODY_ACCEPTED = "Live transfer missed: no rep picked up"
WAITING = (HandoffStatus.OPEN.value,)


def webhook_url(svc: Any, kind: str, key: str, **query: Any) -> str:
    """A public URL under /twilio/handoff (what Twilio requests and signs)."""
    return f"{svc.settings.base_url}/twilio/handoff/{kind}/{key}" + (f"?{urlencode(query)}" if query else "")


def transfer_of(s: Session, h: Handoff) -> Transfer | None:
    """The transfer a warm-transfer try belongs to."""
    return s.scalar(select(Transfer).where(Transfer.conference == h.conference)) if h.conference else None


def tries_query(conference: str) -> Select[tuple[Handoff]]:
    """The tries of the transfer parked in `conference`, first to last (index ix_handoffs_conference)."""
    return select(Handoff).where(Handoff.conference == conference).order_by(Handoff.try_number)


def tries_of(s: Session, t: Transfer) -> list[Handoff]:
    """The transfer's tries, first to last."""
    return list(s.scalars(tries_query(t.conference)))


def _move(s: Session, t: Transfer, from_: tuple[str, ...], **values: Any) -> bool:
    """Conditional UPDATE out of one of ``from_``; False when another callback got there first."""
    res = s.execute(update(Transfer).where(Transfer.id == t.id, Transfer.status.in_(from_)).values(**values))
    return res.rowcount == 1


HOLDING = (TransferStatus.HOLDING.value,)


def _set_lead(s: Session, lead_id: str, status: LeadStatus, reason: str | None, *after: LeadStatus) -> None:
    """Move the lead only from the statuses a transfer passes through."""
    s.execute(update(Lead).where(Lead.id == lead_id, Lead.status.in_([a.value for a in after]))
              .values(status=status.value, status_reason=reason, updated_at=utcnow()))


def start(svc: Any, s: Session, lead: Lead, candidates: list[str], answers: Mapping[str, str], call_sid: str,
          voice: str | None, max_tries: int, now: datetime) -> tuple[Transfer, Handoff]:
    """Open a transfer for the prospect's call and its first try (the dial job goes out after commit)."""
    roster = roster_for(svc)
    first = rep_for(roster, candidates[0])
    tid = new_id()
    t = Transfer(id=tid, lead_id=lead.id, conference=f"leadbot-{tid}", prospect_call_sid=call_sid,
                 candidates=candidates, tries=1, max_tries=max_tries, voice=voice, created_at=now)
    s.add(t)
    due = now + timedelta(seconds=sla_seconds(svc, roster, first))
    h = offer(s, lead, first, HandoffMode.WARM_TRANSFER, answers=answers, queue=candidates[1:],
              conference=t.conference, offered_at=now, due_at=due)
    s.flush()
    lead.status = LeadStatus.TRANSFERRING.value
    record(s, lead.id, Ev.TRANSFER_STARTED, rep=first.name, handoff=h.id, transfer=t.id,
           conference=t.conference, call_sid=call_sid, max_tries=min(max_tries, len(candidates)))
    enqueue_after_commit(s, svc.queue, DIAL_JOB, h.id)
    return t, h


def pass_rep(svc: Any, s: Session, h: Handoff, event: str, reason: str, now: datetime | None = None, *,
             watchdog: bool = False) -> bool:
    """This rep will not take the call: close their try and offer the prospect to the next one."""
    now = now or utcnow()
    res = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value,
                                          Handoff.mode == HandoffMode.WARM_TRANSFER.value)
                    .values(status=HandoffStatus.DECLINED.value, reason=reason, due_at=None))
    if res.rowcount != 1:
        return False
    record(s, h.lead_id, event, rep=h.rep_name, handoff=h.id, attempt=h.try_number, reason=reason)
    if not watchdog:  # the watchdog is the running job; it must not delete itself
        after_commit(s, lambda: cancel(svc.redis, (WATCH_JOB, h.id)))
    t = transfer_of(s, h)
    if t is not None:
        _advance(svc, s, t, h.details.get("answers", {}), now)
    return True


def _advance(svc: Any, s: Session, t: Transfer, answers: Mapping[str, str], now: datetime) -> None:
    """Dial the next candidate, or give up: tell the prospect and fall back to the SMS handoff."""
    if t.status != TransferStatus.HOLDING.value:
        return
    roster = roster_for(svc)
    limit, tries = min(t.max_tries, len(t.candidates)), t.tries
    while tries < limit:
        phone, tries = t.candidates[tries], tries + 1
        rep = rep_for(roster, phone)
        if not rep.active:
            continue
        res = s.execute(update(Transfer).where(Transfer.id == t.id, Transfer.tries == t.tries,
                                               Transfer.status.in_(HOLDING)).values(tries=tries))
        if res.rowcount != 1:
            return  # another callback advanced it first
        due = now + timedelta(seconds=sla_seconds(svc, roster, rep))
        h = offer(s, lead_of(s, t.lead_id), rep, HandoffMode.WARM_TRANSFER, answers=answers,
                  queue=t.candidates[tries:], try_number=tries, conference=t.conference, offered_at=now,
                  due_at=due)
        enqueue_after_commit(s, svc.queue, DIAL_JOB, h.id)
        return
    if not _move(s, t, HOLDING, status=TransferStatus.FAILED.value, ended_at=now):
        return
    first = rep_for(roster, t.candidates[0])
    t.closing = nobody_free(first.name, sla_seconds(svc, roster, first))
    record(s, t.lead_id, Ev.TRANSFER_FAILED, transfer=t.id, tries=t.tries, sms_to=first.name)
    _set_lead(s, t.lead_id, LeadStatus.QUALIFIED, "live transfer: nobody accepted", LeadStatus.TRANSFERRING)
    offer_sms(svc, s, lead_of(s, t.lead_id), first, answers=answers, queue=t.candidates[1:],
              reason=NOBODY_ACCEPTED)
    enqueue_after_commit(s, svc.queue, END_HOLD_JOB, t.id)


def accept(svc: Any, s: Session, h: Handoff, t: Transfer, now: datetime) -> bool:
    """The rep pressed 1: exactly one rep wins, and only while the prospect still waits."""
    if not _move(s, t, HOLDING, status=TransferStatus.ACCEPTED.value):
        return False
    res = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value)
                    .values(status=HandoffStatus.ACKED.value, acked_at=now))
    if res.rowcount != 1:
        s.rollback()
        return False
    seconds = round(max((now - h.created_at).total_seconds(), 0.0), 1)
    record(s, h.lead_id, Ev.TRANSFER_ACCEPTED, rep=h.rep_name, handoff=h.id, attempt=h.try_number,
           hold_seconds=round((now - t.created_at).total_seconds(), 1))
    record(s, h.lead_id, Ev.ACKED, rep=h.rep_name, handoff=h.id, via="transfer", seconds=seconds,
           within_sla=h.due_at is None or now <= h.due_at)
    _set_lead(s, h.lead_id, LeadStatus.HANDED_OFF, None, LeadStatus.QUALIFIED, LeadStatus.TRANSFERRING)
    crm.emit(svc, s, h.lead_id, "lead.acknowledged")
    after_commit(s, lambda: cancel(svc.redis, (WATCH_JOB, h.id)))
    _close_text_offers(svc, s, h, now)
    # The rep has nothing in writing yet, and the managers have not heard of the lead.
    enqueue_after_commit(s, svc.queue, ACCEPTED_JOB, h.id, retry=SEND_RETRY)
    return True


def _close_text_offers(svc: Any, s: Session, h: Handoff, now: datetime) -> None:
    """The rep took the lead live (the prospect called back and was put through): the lead's SMS
    offers still open end with it, timers and all. Left open, the rep's own offer escalated at its
    SLA: the lead went to a second rep and the managers heard the first had missed it."""
    rows = s.execute(select(Handoff.id, Handoff.rep_phone).where(
        Handoff.lead_id == h.lead_id, Handoff.id != h.id, Handoff.mode == HandoffMode.SMS.value,
        Handoff.status == HandoffStatus.OPEN.value)).all()
    for row in rows:
        mine = row.rep_phone == h.rep_phone  # the lead this rep held: acknowledged by taking the call
        closed = ({"status": HandoffStatus.ACKED.value, "acked_at": now} if mine else
                  {"status": HandoffStatus.CANCELLED.value, "due_at": None,
                   "reason": f"{h.rep_name} took the call live"})
        s.execute(update(Handoff).where(Handoff.id == row.id, Handoff.status == HandoffStatus.OPEN.value)
                  .values(**closed))
        record(s, h.lead_id, Ev.ACKED if mine else Ev.CANCELLED, rep=h.rep_name, handoff=row.id,
               via="live call", **({} if mine else {"reason": "taken live"}))
    timers = [(job, row.id) for row in rows for job in (SEND_JOB, REMIND_JOB, ESCALATE_JOB)]
    if timers:
        after_commit(s, lambda: cancel(svc.redis, *timers))


def prospect_left(svc: Any, s: Session, t: Transfer, now: datetime, how: str) -> bool:
    """The prospect hung up before a rep joined: cancel the rep's leg and text the lead instead."""
    if not _move(s, t, WAITING_STATUSES, status=TransferStatus.ABANDONED.value, ended_at=now):
        return False
    reason = hung_up_reason((now - t.created_at).total_seconds())
    tries = tries_of(s, t)
    live = [h for h in tries if h.status in (HandoffStatus.OPEN.value, HandoffStatus.ACKED.value)]
    s.execute(update(Handoff).where(Handoff.conference == t.conference, Handoff.status.in_(WAITING))
              .values(status=HandoffStatus.CANCELLED.value, reason="prospect hung up", due_at=None))
    for h in live:
        if h.rep_call_sid:
            enqueue_after_commit(s, svc.queue, HANG_UP_JOB, h.id)
    watchdogs = [(WATCH_JOB, h.id) for h in live]
    after_commit(s, lambda: cancel(svc.redis, *watchdogs))
    roster = roster_for(svc)
    current = live[-1] if live else None
    rep = rep_for(roster, current.rep_phone if current else t.candidates[0])
    record(s, t.lead_id, Ev.PROSPECT_HUNG_UP, reason=reason, rep=rep.name, how=how, transfer=t.id,
           hold_seconds=round((now - t.created_at).total_seconds(), 1))
    _set_lead(s, t.lead_id, LeadStatus.QUALIFIED, "prospect hung up on hold", LeadStatus.TRANSFERRING,
              LeadStatus.HANDED_OFF)
    answers = tries[-1].details.get("answers", {}) if tries else {}
    offer_sms(svc, s, lead_of(s, t.lead_id), rep, answers=answers,
              queue=[p for p in t.candidates if p != rep.key], reason=reason)
    return True


def connected(s: Session, t: Transfer, call_sid: str, now: datetime) -> None:
    """The accepting rep is in the conference: prospect and rep are talking."""
    h = s.scalar(select(Handoff).where(Handoff.conference == t.conference, Handoff.rep_call_sid == call_sid,
                                       Handoff.status == HandoffStatus.ACKED.value))
    if h is None:
        return
    if _move(s, t, (TransferStatus.ACCEPTED.value,), status=TransferStatus.CONNECTED.value, connected_at=now):
        record(s, t.lead_id, Ev.TRANSFER_CONNECTED, rep=h.rep_name, handoff=h.id, transfer=t.id,
               hold_seconds=round((now - t.created_at).total_seconds(), 1))


def ended(s: Session, t: Transfer, now: datetime) -> None:
    """The conversation is over."""
    if _move(s, t, (TransferStatus.CONNECTED.value,), status=TransferStatus.ENDED.value, ended_at=now):
        talk = (now - t.connected_at).total_seconds() if t.connected_at else None
        record(s, t.lead_id, Ev.TRANSFER_ENDED, transfer=t.id, talk_seconds=round(talk, 1) if talk else None)


def heal_failed(svc: Any, t: Transfer, now: datetime) -> None:
    """Called while a prospect still holds on a failed transfer: re-enqueue the end of hold Redis lost."""
    if t.ended_at is None or (now - t.ended_at).total_seconds() <= DIAL_STALE_SECONDS:
        return
    try:
        lost = job_lost(svc.redis, job_id(END_HOLD_JOB, t.id), now)
    except redis.RedisError:
        return  # still down: the next hold visit tries again
    if lost:
        enqueue(svc.queue, END_HOLD_JOB, t.id)


def heal(svc: Any, s: Session, t: Transfer, now: datetime) -> None:
    """Called while the prospect holds: re-enqueue a dial or watchdog that Redis lost."""
    h = s.scalar(select(Handoff).where(Handoff.conference == t.conference, Handoff.status.in_(WAITING))
                 .order_by(Handoff.try_number.desc()).limit(1))
    if h is None:
        return
    age = (now - h.created_at).total_seconds()
    if h.rep_call_sid is None and age > DIAL_STALE_SECONDS:
        enqueue(svc.queue, DIAL_JOB, h.id)
    elif h.rep_call_sid not in (None, DIALING) and age > DEFAULT_RING_SECONDS + WATCHDOG_GRACE_SECONDS + 15:
        enqueue(svc.queue, WATCH_JOB, h.id)
