"""The SMS handoff and its ladder: text and backup email, reminder at half the SLA, escalation at the SLA.

Each step is an RQ job keyed by the handoff id. Every job first moves the row with a
conditional UPDATE (``due_at``, ``reminded_at`` or ``escalated_at`` from NULL, status still
open), so a job that runs twice, late, or after an acknowledgement does nothing.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import requests
from rq import Retry, get_current_job
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from bot.models import Event, Lead, LeadStatus, utcnow
from bot.timeline import record
from handoff.answers import readable_answers
from handoff.defaults import ACK_WORDS, EMAIL_JOB, ESCALATE_JOB, REMIND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.mail import MailError, send_mail
from handoff.matching import open_handoff_counts
from handoff.models import Handoff, HandoffMode, HandoffStatus
from handoff.notify import (
    e164,
    escalation_email,
    handoff_email,
    handoff_sms_text,
    reassigned_reason,
    reassigned_sms_text,
    reminder_sms_text,
    unassigned_email,
)
from handoff.offers import lead_link, lead_of, offer_sms, sla_seconds
from handoff.roster import HandoffError, Rep, Roster
from handoff.rosters import rep_for, roster_for
from handoff.scheduling import after_commit, cancel, enqueue

log = logging.getLogger(__name__)

EMAIL_RETRY = Retry(max=3, interval=[10, 60, 300])
ACK_REPLY = "Thanks {first}! {lead} ({service}) is marked as called."
MORE_OPEN = " You have {n} more open lead{s}: reply 1 after each call."
LATE_REASSIGNED = "Thanks. {lead} was already reassigned to {other}, no need to call."
NOTHING_OPEN = "Thanks! You have no open leads right now."
HELP = "Reply 1 once you've called {lead} {phone}."
_ACKABLE = (HandoffStatus.OPEN.value, HandoffStatus.MISSED.value)  # a late ack still counts (as late)


class TransientSendError(HandoffError):
    """Twilio or the network failed in a way a retry can fix; RQ retries the job."""


def _retries_left() -> int:
    """RQ retries this job still has (0 outside a worker)."""
    job = get_current_job()
    return int(job.retries_left or 0) if job is not None else 0


def _context(svc: Any, s: Session, h: Handoff) -> tuple[Lead, Roster, Rep]:
    """The lead, the current roster and the handoff's rep (a stand-in if they left the roster)."""
    roster = roster_for(svc)
    return lead_of(s, h.lead_id), roster, rep_for(roster, h.rep_phone, h.rep_name, h.rep_email)


def _transient(exc: Exception) -> bool:
    """Network trouble, Twilio 5xx and 429 can pass; other Twilio errors (bad number, STOP) cannot."""
    return not isinstance(exc, TwilioRestException) or exc.status >= 500 or exc.status == 429


def _sms(svc: Any, s: Session, h: Handoff, body: str, kind: str) -> tuple[str | None, bool]:
    """Text the rep: (sid, False), or (None, transient?) with the failure recorded, never raised."""
    try:
        return svc.twilio.messages.create(to=h.rep_phone, from_=svc.settings.caller_id, body=body).sid, False
    except (TwilioRestException, requests.RequestException) as exc:
        record(s, h.lead_id, Ev.SMS_FAILED, kind=kind, rep=h.rep_name, handoff=h.id, error=str(exc)[:300])
        return None, _transient(exc)


def _mail(svc: Any, s: Session, h: Handoff, msg: EmailMessage, kind: str) -> bool:
    """Send one email and record the outcome."""
    try:
        receipt = send_mail(svc.settings, msg, svc.sessions)
    except MailError as exc:
        record(s, h.lead_id, Ev.EMAIL_FAILED, kind=kind, handoff=h.id, error=str(exc)[:300])
        return False
    record(s, h.lead_id, Ev.EMAIL_SENT, kind=kind, rep=h.rep_name, handoff=h.id, to=str(msg["To"] or ""),
           cc=str(msg["Cc"] or ""), transport=receipt.transport.value, subject=str(msg["Subject"]))
    return True


def send(svc: Any, handoff_id: str) -> str:
    """Text the handoff to the rep, then queue the backup email and the SLA ladder."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or h.status != HandoffStatus.OPEN.value or h.due_at is not None:
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        sla = sla_seconds(svc, roster, rep)
        due = now + timedelta(seconds=sla)
        claimed = s.execute(update(Handoff).where(
            Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value, Handoff.due_at.is_(None),
        ).values(due_at=due))
        if claimed.rowcount != 1:
            s.rollback()
            return "skipped"
        text = handoff_sms_text(lead, h.details.get("answers"), rep, lead.created_at, lead_link(svc, lead.id),
                                now, h.reason)
        sid, transient = _sms(svc, s, h, text, "handoff")
        if transient and _retries_left() > 0:
            h.due_at = None  # release the claim so the retry sends it
            s.commit()
            raise TransientSendError(f"handoff {h.id}: text to {h.rep_phone} failed; RQ will retry")
        if sid:
            record(s, lead.id, Ev.SMS_SENT, rep=rep.name, handoff=h.id, to=h.rep_phone, sid=sid,
                   chars=len(text), sla_seconds=sla, due_at=due.isoformat() + "Z")
        s.commit()
    enqueue(svc.queue, EMAIL_JOB, handoff_id, retry=EMAIL_RETRY)
    enqueue(svc.queue, REMIND_JOB, handoff_id, at=now + timedelta(seconds=sla / 2))
    enqueue(svc.queue, ESCALATE_JOB, handoff_id, at=due)
    return sid or "sms-failed"


def _already(s: Session, h: Handoff, type_: str, kind: str) -> bool:
    """True when this handoff already has an event of this type and kind (so a retry skips it)."""
    rows = s.scalars(select(Event.data).where(Event.lead_id == h.lead_id, Event.type == type_))
    return any(d.get("handoff") == h.id and d.get("kind") == kind for d in rows)


def send_email(svc: Any, handoff_id: str) -> str:
    """The backup email: the rep in To, their managers in Cc, with the response timer."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or _already(s, h, Ev.EMAIL_SENT, "handoff"):
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        due = h.due_at or now + timedelta(seconds=sla_seconds(svc, roster, rep))
        msg = handoff_email(lead, h.details.get("answers"), rep, roster.managers_for(rep), lead.created_at,
                            lead_link(svc, lead.id), now, due, svc.settings.mail_from, h.reason)
        sent = _mail(svc, s, h, msg, "handoff")
        s.commit()
    if not sent:
        raise MailError(f"handoff {handoff_id}: backup email to {rep.email} failed; RQ will retry")
    return "sent"


def remind(svc: Any, handoff_id: str) -> str:
    """Half the SLA gone without an acknowledgement: nudge the rep once."""
    now = utcnow()
    with svc.sessions() as s:
        res = s.execute(update(Handoff).where(
            Handoff.id == handoff_id, Handoff.status == HandoffStatus.OPEN.value, Handoff.due_at.is_not(None),
            Handoff.reminded_at.is_(None)).values(reminded_at=now))
        if res.rowcount != 1:
            s.rollback()
            return "skipped"
        h = s.get(Handoff, handoff_id)
        lead, _roster, rep = _context(svc, s, h)
        text = reminder_sms_text(lead, rep, h.created_at, h.due_at, lead_link(svc, lead.id), now)
        sid, _transient_error = _sms(svc, s, h, text, "reminder")
        record(s, lead.id, Ev.REMINDER, rep=rep.name, handoff=h.id, sid=sid,
               due_at=h.due_at.isoformat() + "Z")
        s.commit()
    return sid or "sms-failed"


def _next_rep(s: Session, roster: Roster, lead: Lead, queue: list[str], now: datetime) -> tuple[Rep | None,
                                                                                                list[str]]:
    """The first queued rep who is active, sells the service, is on shift and under capacity."""
    offered = set(s.scalars(select(Handoff.rep_phone).where(Handoff.lead_id == lead.id)))
    counts = open_handoff_counts(s)
    for i, phone in enumerate(queue):
        try:
            rep = roster.rep(phone)
        except KeyError:
            continue
        on_shift = rep.hours is None or rep.hours.is_open(now)
        room = rep.capacity is None or counts.get(rep.key, 0) < rep.capacity
        if phone not in offered and rep.active and rep.offers(lead.service) and on_shift and room:
            return rep, queue[i + 1:]
    return None, []


def escalate(svc: Any, handoff_id: str) -> str:
    """The SLA passed: reassign to the next matched rep and email the managers naming who missed it."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or h.status != HandoffStatus.OPEN.value or h.due_at is None:
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        nxt, rest = _next_rep(s, roster, lead, list(h.details.get("queue", [])), now)
        status = HandoffStatus.REASSIGNED if nxt else HandoffStatus.MISSED
        res = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value,
                                              Handoff.escalated_at.is_(None))
                        .values(status=status.value, escalated_at=now))
        if res.rowcount != 1:
            s.rollback()
            return "skipped"
        sla = sla_seconds(svc, roster, rep)
        record(s, lead.id, Ev.ESCALATED, rep=rep.name, handoff=h.id, sla_seconds=sla,
               due_at=h.due_at.isoformat() + "Z", next_rep=nxt.name if nxt else None)
        if nxt is not None:
            new = offer_sms(svc, s, lead, nxt, answers=h.details.get("answers", {}), queue=rest,
                            reason=reassigned_reason(rep, sla), try_number=h.try_number + 1)
            record(s, lead.id, Ev.REASSIGNED, rep=nxt.name, previous_rep=rep.name, handoff=new.id,
                   previous_handoff=h.id)
            _sms(svc, s, h, reassigned_sms_text(lead, nxt, sla), "reassigned")
        msg = escalation_email(lead, rep, roster.managers_for(rep), h.created_at, h.due_at, now,
                               lead_link(svc, lead.id), svc.settings.mail_from, nxt)
        _mail(svc, s, h, msg, "escalation")
        s.commit()
    return status.value


def is_ack(body: str) -> bool:
    """True for "1", "done", "called", "ok", a thumbs-up, or a text starting with one of them."""
    text = " ".join(re.sub(r"[^\w\s\U0001f44d]", " ", body.lower()).split())
    first = text.split(" ", 1)[0] if text else ""
    return text in ACK_WORDS or first in {"1", "done", "called", "ok", "okay"}


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
    if not is_ack(body):
        return HELP.format(lead=lead.name, phone=e164(lead.phone))
    late = h.status == HandoffStatus.MISSED.value  # read before the UPDATE refreshes the row
    res = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status.in_(_ACKABLE))
                    .values(status=HandoffStatus.ACKED.value, acked_at=now))
    if res.rowcount != 1:
        return NOTHING_OPEN
    seconds = max((now - h.created_at).total_seconds(), 0.0)
    within = h.due_at is not None and now <= h.due_at
    record(s, lead.id, Ev.ACKED, rep=rep.name, handoff=h.id, via="sms", seconds=round(seconds, 1),
           within_sla=within, late=late)
    mark_handed_off(s, lead.id)
    # Jobs check the row anyway; deleting them keeps Redis tidy. Only after the ack is committed.
    after_commit(s, lambda: cancel(svc.redis, (REMIND_JOB, h.id), (ESCALATE_JOB, h.id)))
    left = s.scalar(select(func.count()).select_from(Handoff).where(
        Handoff.rep_phone == rep.key, Handoff.id != h.id, Handoff.status == HandoffStatus.OPEN.value))
    reply = ACK_REPLY.format(first=rep.name.split(" ")[0], lead=lead.name, service=lead.service or "lead")
    if left:
        reply += MORE_OPEN.format(n=left, s="s" if left != 1 else "")
    return reply


def mark_handed_off(s: Session, lead_id: str) -> None:
    """A rep has the lead now (only from the statuses a handoff passes through)."""
    s.execute(update(Lead).where(Lead.id == lead_id, Lead.status.in_(
        [LeadStatus.QUALIFIED.value, LeadStatus.TRANSFERRING.value])).values(
        status=LeadStatus.HANDED_OFF.value, status_reason=None, updated_at=utcnow()))


def report_unassigned(svc: Any, lead_id: str) -> str:
    """Email every manager about a qualified lead nobody could take."""
    now = utcnow()
    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if lead is None:
            return "skipped"
        roster = roster_for(svc)
        msg = unassigned_email(lead, readable_answers(lead.answers), roster.managers,
                               lead.status_reason or "no rep on any shift", lead_link(svc, lead.id), now,
                               svc.settings.mail_from)
        receipt = send_mail(svc.settings, msg, svc.sessions)
        record(s, lead.id, Ev.EMAIL_SENT, kind="unassigned", to=str(msg["To"]),
               transport=receipt.transport.value, subject=str(msg["Subject"]))
        s.commit()
    return "sent"
