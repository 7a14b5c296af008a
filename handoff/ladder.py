"""The SMS handoff and its ladder: text and backup email, reminder at half the SLA, escalation at the SLA.

Each step is an RQ job keyed by the handoff id. Every job first moves the row with a
conditional UPDATE (``due_at``, ``reminded_at`` or ``escalated_at`` from NULL, status still
open), so a job that runs twice, late, or after an acknowledgement does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import requests
from rq import Retry, get_current_job
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from bot.compliance.optout import opted_out
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import Event, Lead, utcnow
from bot.store.timeline import record
from handoff.defaults import EMAIL_JOB, ESCALATE_JOB, ESCALATION_MAIL_JOB, OPTED_OUT_JOB, REMIND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.mail import MailError, send_mail
from handoff.matching import open_handoff_counts
from handoff.notify import (
    accepted_email,
    escalation_email,
    handoff_email,
    handoff_sms_text,
    reassigned_reason,
    reassigned_sms_text,
    reminder_sms_text,
)
from handoff.offers import SEND_RETRY, lead_link, lead_of, offer_sms, sla_seconds
from handoff.roster import HandoffError, Rep, Roster
from handoff.roster_cache import rep_for, roster_for
from handoff.scheduling import enqueue

log = logging.getLogger(__name__)

EMAIL_RETRY = Retry(max=3, interval=[10, 60, 300])
LOST_GRACE_S = 30  # a step due this long ago and missing from Redis was lost (handoff.loststeps)


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


@dataclass(frozen=True)
class Delivery:
    """What happened to one text or email: its SID or Message-ID, or the error."""

    ref: str | None = None
    error: str | None = None
    transient: bool = False
    transport: str = "twilio"


def _text(svc: Any, phone: str, body: str) -> Delivery:
    """Text a rep; never raises. Called outside any transaction: a slow Twilio must not hold DB locks."""
    try:
        return Delivery(svc.twilio.messages.create(to=phone, from_=svc.settings.caller_id, body=body).sid)
    except (TwilioRestException, requests.RequestException) as exc:
        return Delivery(error=str(exc)[:300], transient=_transient(exc))


def _email(svc: Any, msg: EmailMessage) -> Delivery:
    """Send one email (SMTP or outbox); never raises. Called outside any transaction."""
    try:
        receipt = send_mail(svc.settings, msg, svc.sessions)
    except MailError as exc:
        return Delivery(error=str(exc)[:300])
    return Delivery(receipt.message_id, transport=receipt.transport.value)


def mail_and_note(svc: Any, h: Handoff | None, lead_id: str, kind: str, msg: EmailMessage) -> Delivery:
    """Send one email (outside any transaction) and record it, sent or failed, in the lead's timeline."""
    sent = _email(svc, msg)
    with svc.sessions() as s:
        _note_email(s, h, lead_id, kind, msg, sent)
        s.commit()
    return sent


def _note_text(s: Session, h: Handoff, kind: str, sent: Delivery, **data: Any) -> None:
    """Record a text to the rep (sent or failed) in the lead's timeline."""
    if sent.error is not None:
        record(s, h.lead_id, Ev.SMS_FAILED, kind=kind, rep=h.rep_name, handoff=h.id, error=sent.error)
    elif kind == "handoff":
        record(s, h.lead_id, Ev.SMS_SENT, rep=h.rep_name, handoff=h.id, to=h.rep_phone, sid=sent.ref, **data)
    elif kind == "accepted":
        record(s, h.lead_id, Ev.SMS_SENT, kind=kind, rep=h.rep_name, handoff=h.id, to=h.rep_phone,
               sid=sent.ref, **data)


def _note_email(s: Session, h: Handoff | None, lead_id: str, kind: str, msg: EmailMessage,
                sent: Delivery) -> None:
    """Record an email (sent or failed) in the lead's timeline."""
    rep, handoff = (h.rep_name, h.id) if h is not None else (None, None)
    if sent.error is not None:
        record(s, lead_id, Ev.EMAIL_FAILED, kind=kind, rep=rep, handoff=handoff, error=sent.error)
        return
    record(s, lead_id, Ev.EMAIL_SENT, kind=kind, rep=rep, handoff=handoff, to=str(msg["To"] or ""),
           cc=str(msg["Cc"] or ""), transport=sent.transport, subject=str(msg["Subject"]))


def send(svc: Any, handoff_id: str) -> str:
    """Text the handoff to the rep, then queue the backup email and the SLA ladder."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or h.status != HandoffStatus.OPEN.value or h.due_at is not None:
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        if _blocked(s, h, lead, "rep_handoff", cancel=True):  # never offer an opted-out lead
            return "blocked"
        sla = sla_seconds(svc, roster, rep)
        due = now + timedelta(seconds=sla)
        claimed = s.execute(update(Handoff).where(
            Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value, Handoff.due_at.is_(None),
        ).values(due_at=due))
        if claimed.rowcount != 1:
            s.rollback()
            return "skipped"
        text = handoff_sms_text(lead, h.details.get("answers"), rep, lead.created_at,
                                lead_link(svc, lead.id, h), now, h.reason)
        s.commit()
    sent = _text(svc, h.rep_phone, text)
    with svc.sessions() as s:
        _note_text(s, h, "handoff", sent, chars=len(text), sla_seconds=sla, due_at=due.isoformat() + "Z")
        if sent.transient and _retries_left() > 0:
            # Release the claim so RQ's retry sends it (and nobody else sends it meanwhile).
            s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.due_at == due).values(due_at=None))
            s.commit()
            raise TransientSendError(f"handoff {h.id}: text to {h.rep_phone} failed; RQ will retry")
        s.commit()
    enqueue(svc.queue, EMAIL_JOB, handoff_id, retry=EMAIL_RETRY)
    enqueue(svc.queue, REMIND_JOB, handoff_id, at=now + timedelta(seconds=sla / 2))
    enqueue(svc.queue, ESCALATE_JOB, handoff_id, at=due)
    return sent.ref or "sms-failed"


def _already(s: Session, h: Handoff, type_: str, kind: str) -> bool:
    """True when this handoff already has an event of this type and kind (so a retry skips it)."""
    rows = s.scalars(select(Event.data).where(Event.lead_id == h.lead_id, Event.type == type_))
    return any(d.get("handoff") == h.id and d.get("kind") == kind for d in rows)


def _blocked(s: Session, h: Handoff, lead: Lead, step: str, cancel: bool = False) -> bool:
    """The number opted out without the STOP path (a DNC import): this step stops, and says so; with
    `cancel`, the handoff too (status cancelled, escalated so the sweeper leaves it)."""
    if not opted_out(s, lead.phone):
        return False
    if cancel:
        s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value)
                  .values(status=HandoffStatus.CANCELLED.value, reason="opted out", escalated_at=utcnow()))
    record(s, h.lead_id, "touch_blocked", kind=step, channel="sms", rep=h.rep_name,
           reason="blocked: opted out", handoff=h.id)
    s.commit()
    return True


def send_email(svc: Any, handoff_id: str) -> str:
    """The backup email: the rep in To, their managers in Cc, with the response timer."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or _already(s, h, Ev.EMAIL_SENT, "handoff"):
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        due = h.due_at or now + timedelta(seconds=sla_seconds(svc, roster, rep))
        if h.mode == HandoffMode.WARM_TRANSFER.value:  # accepted live: a record, no response timer
            msg = accepted_email(lead, h.details.get("answers"), rep, roster.managers_for(rep),
                                 lead.created_at, lead_link(svc, lead.id, h), now, svc.settings.mail_from)
        else:
            msg = handoff_email(lead, h.details.get("answers"), rep, roster.managers_for(rep),
                                lead.created_at, lead_link(svc, lead.id, h), now, due,
                                svc.settings.mail_from, h.reason)
    sent = mail_and_note(svc, h, h.lead_id, "handoff", msg)
    if sent.error is not None:
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
        if _blocked(s, h, lead, "rep_reminder"):  # no nudge to call them (the sweeper tells the rep)
            return "blocked"
        text = reminder_sms_text(lead, rep, h.created_at, h.due_at, lead_link(svc, lead.id, h), now)
        s.commit()
    sent = _text(svc, h.rep_phone, text)
    with svc.sessions() as s:
        _note_text(s, h, "reminder", sent)
        record(s, h.lead_id, Ev.REMINDER, rep=rep.name, handoff=h.id, sid=sent.ref,
               due_at=h.due_at.isoformat() + "Z")
        s.commit()
    return sent.ref or "sms-failed"


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
        if _blocked(s, h, lead, "rep_escalation", cancel=True):  # no other rep gets an opted-out lead
            enqueue(svc.queue, OPTED_OUT_JOB, h.id, retry=SEND_RETRY)  # the rep holding it is told
            return "blocked"
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
        notice = None
        if nxt is None:  # nobody left: on the unassigned list, the managers texted and emailed, and the
            # next rep who is free gets it (before, it ended 'missed' with one email, listed nowhere)
            from handoff.waiting import put_on_list

            within = f"{sla // 60} min" if sla >= 60 else f"{sla} s"
            put_on_list(svc, s, lead, f"{rep.name} did not acknowledge it within {within} and no other "
                        "matched rep is free", answers=h.details.get("answers"))
        if nxt is not None:
            new = offer_sms(svc, s, lead, nxt, answers=h.details.get("answers", {}), queue=rest,
                            reason=reassigned_reason(rep, sla), try_number=h.try_number + 1)
            record(s, lead.id, Ev.REASSIGNED, rep=nxt.name, previous_rep=rep.name, handoff=new.id,
                   previous_handoff=h.id)
            notice = reassigned_sms_text(lead, nxt, sla)
        msg = escalation_email(lead, rep, roster.managers_for(rep), h.created_at, h.due_at, now,
                               lead_link(svc, lead.id), svc.settings.mail_from, nxt)
        s.commit()  # the new rep's handoff is enqueued now
    told = _text(svc, h.rep_phone, notice) if notice else None
    mailed = _email(svc, msg)
    with svc.sessions() as s:
        if told is not None:
            _note_text(s, h, "reassigned", told)
        _note_email(s, h, h.lead_id, "escalation", msg, mailed)
        s.commit()
    if mailed.error is not None:  # the managers must hear of the miss: try again a minute from now
        enqueue(svc.queue, ESCALATION_MAIL_JOB, handoff_id, delay=60, retry=EMAIL_RETRY)
    return status.value
