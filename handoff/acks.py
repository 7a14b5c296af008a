"""A rep's text back: "1" (or done, called, ok...) acknowledges their newest open handoff; "2" passes it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.runtime import crm
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import Lead, LeadStatus, utcnow
from bot.store.timeline import record
from handoff.defaults import ACK_WORDS, ESCALATE_JOB, REMIND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.notify import e164
from handoff.offers import lead_of
from handoff.roster import Rep
from handoff.scheduling import after_commit, cancel

ACK_REPLY = "Thanks {first}! {lead} ({service}) is marked as called."
MORE_OPEN = " You have {n} more open lead{s}: reply 1 after each call."
LATE_REASSIGNED = "Thanks. {lead} was already reassigned to {other}, no need to call."
NOTHING_OPEN = "Thanks! You have no open leads right now."
HELP = "Reply 1 once you've called {lead} {phone}."
PASSED = "OK, {lead} goes to {to} instead."
PASS_WORDS = {"2", "pass", "can't", "cant", "cannot"}
# "No" passes only on its own: "No problem, calling now" is a rep taking the lead, not passing it.
PASS_REPLIES = {"no", "nope", "no sorry", "sorry no", "no thanks", "no can't", "no cant", "no can not"}
_ACKABLE = (HandoffStatus.OPEN.value, HandoffStatus.MISSED.value)  # a late ack still counts (as late)


def is_ack(body: str) -> bool:
    """True for "1", "done", "called", "ok", a thumbs-up, or a text starting with one of them."""
    text = " ".join(re.sub(r"[^\w\s\U0001f44d]", " ", body.lower()).split())
    first = text.split(" ", 1)[0] if text else ""
    return text in ACK_WORDS or first in {"1", "done", "called", "ok", "okay"}


def is_pass(body: str) -> bool:
    """True for "2", "pass", "can't" or "cannot" as the whole reply or its first word, or a plain "no"."""
    text = " ".join(re.sub(r"[^\w\s']", " ", body.lower()).split())
    first = text.split(" ", 1)[0] if text else ""
    return first in PASS_WORDS or text in PASS_REPLIES


def acknowledge(svc: Any, s: Session, rep: Rep, body: str, now: datetime | None = None) -> str:
    """A rep's text: acknowledge their newest open handoff, and say what is left."""
    now = now or utcnow()
    mine = select(Handoff).where(Handoff.rep_phone == rep.key, Handoff.mode == HandoffMode.SMS.value)
    h = s.scalar(mine.where(Handoff.status.in_(_ACKABLE)).order_by(Handoff.created_at.desc()).limit(1))
    if h is None:
        gone = s.scalar(mine.where(Handoff.status == HandoffStatus.REASSIGNED.value,
                                   Handoff.escalated_at >= now - timedelta(days=1))
                        .order_by(Handoff.escalated_at.desc()).limit(1))
        if gone is None or not is_ack(body):
            return NOTHING_OPEN
        lead = lead_of(s, gone.lead_id)
        other = s.scalar(select(Handoff.rep_name).where(
            Handoff.lead_id == gone.lead_id, Handoff.created_at >= gone.created_at, Handoff.id != gone.id,
        ).order_by(Handoff.created_at.desc()).limit(1))
        return LATE_REASSIGNED.format(lead=lead.name, other=other or "another rep")
    lead = lead_of(s, h.lead_id)
    if is_pass(body):  # "2" / "pass" / "can't": the same as the lead page's "Can't take it"
        from handoff.passing import pass_handoff

        nxt = pass_handoff(svc, s, h, "sms", now)
        if nxt is None:
            return NOTHING_OPEN
        return PASSED.format(lead=lead.name, to=nxt or "your manager")
    if not is_ack(body):
        return HELP.format(lead=lead.name, phone=e164(lead.phone))
    if not ack_handoff(svc, s, h, rep.name, "sms", now):
        return NOTHING_OPEN
    left = s.scalar(select(func.count()).select_from(Handoff).where(
        Handoff.rep_phone == rep.key, Handoff.id != h.id, Handoff.status == HandoffStatus.OPEN.value))
    reply = ACK_REPLY.format(first=rep.name.split(" ")[0], lead=lead.name, service=lead.service or "lead")
    if left:
        reply += MORE_OPEN.format(n=left, s="s" if left != 1 else "")
    return reply


def ack_handoff(svc: Any, s: Session, h: Handoff, rep_name: str, via: str, now: datetime) -> bool:
    """Acknowledge one open (or missed) handoff; False when it was no longer open. The caller commits."""
    late = h.status == HandoffStatus.MISSED.value  # read before the UPDATE refreshes the row
    res = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status.in_(_ACKABLE))
                    .values(status=HandoffStatus.ACKED.value, acked_at=now))
    if res.rowcount != 1:
        return False
    seconds = max((now - h.created_at).total_seconds(), 0.0)
    within = h.due_at is not None and now <= h.due_at
    record(s, h.lead_id, Ev.ACKED, rep=rep_name, handoff=h.id, via=via, seconds=round(seconds, 1),
           within_sla=within, late=late)
    mark_handed_off(s, h.lead_id)
    crm.emit(svc, s, h.lead_id, "lead.acknowledged")
    # Jobs check the row anyway; deleting them keeps Redis tidy. Only after the ack is committed.
    after_commit(s, lambda: cancel(svc.redis, (REMIND_JOB, h.id), (ESCALATE_JOB, h.id)))
    return True


def mark_handed_off(s: Session, lead_id: str) -> None:
    """A rep has the lead now (only from the statuses a handoff passes through)."""
    s.execute(update(Lead).where(Lead.id == lead_id, Lead.status.in_(
        [LeadStatus.QUALIFIED.value, LeadStatus.TRANSFERRING.value])).values(
        status=LeadStatus.HANDED_OFF.value, status_reason=None, updated_at=utcnow()))
