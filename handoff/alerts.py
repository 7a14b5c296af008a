"""Telling people outside the SMS ladder: the rep who accepted a live transfer (text, then the backup
email), the managers when nobody can take a qualified lead (email, and a text to each with a phone),
and the managers again when an SLA-missed email could not be sent.

Each is an RQ job that checks the timeline before sending, so a retry sends only what failed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.runtime.queueing import job_lost
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus, TransferStatus, WaitingLead
from bot.store.tables import Event, Lead, utcnow
from bot.store.timeline import record
from handoff.answer_text import readable_answers
from handoff.defaults import ACCEPTED_JOB, EMAIL_JOB, UNASSIGNED_JOB, UNREACHABLE_JOB
from handoff.events import HandoffEvent as Ev
from handoff.ladder import (
    EMAIL_RETRY,
    LOST_GRACE_S,
    TransientSendError,
    _already,
    _context,
    _note_text,
    _retries_left,
    _text,
    mail_and_note,
)
from handoff.mail import MailError
from handoff.notify import (
    accepted_sms_text,
    escalation_email,
    unassigned_email,
    unassigned_sms_text,
    unreachable_email,
)
from handoff.offers import SEND_RETRY, lead_link
from handoff.roster_cache import roster_for
from handoff.scheduling import enqueue, job_id
from handoff.transfer import transfer_of
from handoff.waiting import ALERT_RETRY
from handoff.withdrawn import sweep_lost as tell_reps_lost

log = logging.getLogger(__name__)
# Accepted transfers older than this are not looked at again by the sweeper.
ACCEPTED_LOOKBACK = timedelta(hours=6)
# The events after which report_unreachable is due (the sweeper looks this far back for lost ones).
UNREACHABLE_CUES = ("dial_failed", "blocked", "cadence_finished", "nurture_finished")
UNREACHABLE_LOOKBACK = timedelta(hours=6)
# The prospect hung up between the rep's 1 and the bridge: that rep gets the hung-up SMS handoff instead.
BRIDGED = (TransferStatus.ACCEPTED.value, TransferStatus.CONNECTED.value, TransferStatus.ENDED.value)


def send_accepted(svc: Any, handoff_id: str) -> str:
    """A rep accepted the live transfer: text them the lead (talking now, no reply needed), then the email."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if (h is None or h.mode != HandoffMode.WARM_TRANSFER.value or h.status != HandoffStatus.ACKED.value
                or _already(s, h, Ev.SMS_SENT, "accepted")):
            return "skipped"
        t = transfer_of(s, h)
        if t is not None and t.status not in BRIDGED:
            return "skipped"
        lead, _roster, rep = _context(svc, s, h)
        text = accepted_sms_text(lead, h.details.get("answers"), rep, lead.created_at,
                                 lead_link(svc, lead.id), now)
    sent = _text(svc, h.rep_phone, text)
    with svc.sessions() as s:
        _note_text(s, h, "accepted", sent, chars=len(text))
        s.commit()
    if sent.transient and _retries_left() > 0:
        raise TransientSendError(f"handoff {h.id}: text to {h.rep_phone} failed; RQ will retry")
    enqueue(svc.queue, EMAIL_JOB, handoff_id, retry=EMAIL_RETRY)
    return sent.ref or "sms-failed"


def resend_escalation(svc: Any, handoff_id: str) -> str:
    """Send the SLA-missed email the escalation could not (RQ retries it; a sent one is not repeated)."""
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if (h is None or h.escalated_at is None or h.due_at is None
                or _already(s, h, Ev.EMAIL_SENT, "escalation")):
            return "skipped"
        lead, roster, rep = _context(svc, s, h)
        moved = s.scalars(select(Event.data).where(Event.lead_id == h.lead_id, Event.type == Ev.REASSIGNED))
        taker = next((d.get("rep") for d in moved if d.get("previous_handoff") == h.id), None)
        nxt = next((r for r in roster.salespeople if r.name == taker), None)
        msg = escalation_email(lead, rep, roster.managers_for(rep), h.created_at, h.due_at, now,
                               lead_link(svc, lead.id), svc.settings.mail_from, nxt)
    sent = mail_and_note(svc, h, h.lead_id, "escalation", msg)
    if sent.error is not None:
        raise MailError(f"handoff {handoff_id}: the SLA-missed email failed again: {sent.error}")
    return "sent"


def _told(s: Any, lead_id: str, type_: str, kind: str = "unassigned") -> set[str]:
    """Managers' addresses or phones already sent this lead's alert of `kind` (so a retry skips them)."""
    rows = s.scalars(select(Event.data).where(Event.lead_id == lead_id, Event.type == type_))
    return {d.get("to") for d in rows if d.get("kind") == kind}


def _told_of_listing(s: Any, lead_id: str, type_: str) -> set[str]:
    """As _told, for this listing only: a lead back on the list (a rep passed it, it qualified again)
    is news to the managers, who last heard it was handed out. Before, the first listing's alert
    counted for every later one, and the managers never heard of it again."""
    listed = s.scalar(select(Event.id).where(Event.lead_id == lead_id, Event.type == Ev.UNASSIGNED)
                      .order_by(Event.id.desc()).limit(1))
    rows = s.scalars(select(Event.data).where(Event.lead_id == lead_id, Event.type == type_,
                                              Event.id > (listed or 0)))
    return {d.get("to") for d in rows if d.get("kind") == "unassigned"}


def report_unassigned(svc: Any, lead_id: str) -> str:
    """Email every manager, and text each one with a phone, about a lead nobody can take now.

    RQ retries a failure; a text or email that already went out is not sent again.
    """
    now = utcnow()
    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if lead is None:
            return "skipped"
        roster = roster_for(svc)  # unusable: the job fails and waits in RQ's failed registry for a person
        waiting = s.get(WaitingLead, lead_id)
        reason = waiting.reason if waiting else (lead.status_reason or "nobody available")
        answers = (waiting.details or {}).get("answers") if waiting else None
        answers = answers or readable_answers(lead.answers)
        link = lead_link(svc, lead.id)
        mailed = bool(_told_of_listing(s, lead_id, Ev.EMAIL_SENT))
        texted = _told_of_listing(s, lead_id, Ev.SMS_SENT)
        msg = unassigned_email(lead, answers, roster.managers, reason, link, now, svc.settings.mail_from)
        body = unassigned_sms_text(lead, reason, link, now)
    phones = [m for m in roster.managers if m.phone and m.phone not in texted]
    failed = []
    for manager in phones:
        sent = _text(svc, manager.phone, body)
        with svc.sessions() as s:
            if sent.error is None:
                record(s, lead_id, Ev.SMS_SENT, kind="unassigned", manager=manager.name, to=manager.phone,
                       sid=sent.ref)
            else:
                failed.append(manager.name)
                record(s, lead_id, Ev.SMS_FAILED, kind="unassigned", manager=manager.name, to=manager.phone,
                       error=sent.error)
            s.commit()
    if not mailed:
        sent = mail_and_note(svc, None, lead_id, "unassigned", msg)
        if sent.error is not None:
            raise MailError(f"lead {lead_id}: unassigned-lead email failed: {sent.error}")
    if failed:
        raise TransientSendError(f"lead {lead_id}: unassigned-lead text to {', '.join(failed)} failed")
    return "sent"


def _ruled_out(s: Any, lead_id: str) -> bool:
    """True when the lead's last word is a calling rule's 'never' (a cap of 0, no consent), not a dial."""
    last = s.scalar(select(Event.type).where(Event.lead_id == lead_id).order_by(Event.id.desc()).limit(1))
    return last == "blocked"


def report_unreachable(svc: Any, lead_id: str) -> str:
    """Email every manager about a lead leadbot cannot reach, so a person follows it up.

    A failed lead (an invalid, blocked or unsubscribed number, or a dial that kept failing), one the
    whole retry cadence never reached, or a nurtured one that answered no step of its drip, would
    otherwise end with only a status: nobody at the company knows. Sent once per failure, per drip
    and per cadence run out (a new submission starts another cadence); RQ retries a mail server's
    refusal.
    """
    now = utcnow()
    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.status not in ("failed", "no_answer", "nurturing"):
            return "skipped"
        reason = lead.status_reason or "the call failed"
        advice = "Check the number with the lead source, or reach the prospect another way."
        if lead.status in ("failed", "nurturing"):  # a dial that failed; a drip that ended unanswered
            kind, headline = (("unreachable", "the call failed") if lead.status == "failed"
                              else ("nurture_finished", "no reply to the nurture drip"))
            if lead.status == "failed" and _ruled_out(s, lead_id):
                headline = "no automated contact allowed"
                advice = ("No automated call or text is allowed for this lead (see above): "
                          "a person must follow it up.")
            if _told(s, lead_id, Ev.EMAIL_SENT, kind):
                return "already sent"
        else:
            kind, headline = "no_answer", reason
            if not _cadence_unreported(s, lead_id):
                return "skipped"
        roster = roster_for(svc)
        msg = unreachable_email(lead, readable_answers(lead.answers), roster.managers, reason,
                                lead_link(svc, lead.id), now, svc.settings.mail_from, headline, advice)
    sent = mail_and_note(svc, None, lead_id, kind, msg)
    if sent.error is not None:
        raise MailError(f"lead {lead_id}: unreachable-lead email failed: {sent.error}")
    return "sent"


def _cadence_unreported(s: Any, lead_id: str) -> bool:
    """True when the lead's retry cadence ran out more often than the managers were told of it."""
    rows = s.execute(select(Event.type, Event.data).where(
        Event.lead_id == lead_id, Event.type.in_(["cadence_finished", Ev.EMAIL_SENT]))).all()
    finished = sum(1 for r in rows if r.type == "cadence_finished")
    told = sum(1 for r in rows if r.type == Ev.EMAIL_SENT and r.data.get("kind") == "no_answer")
    return finished > told


def _unreported(s: Any, lead: Lead) -> bool:
    """True when report_unreachable has something to say of the lead that it has not said yet."""
    if lead.status == "failed":
        return not _told(s, lead.id, Ev.EMAIL_SENT, "unreachable")
    if lead.status == "nurturing":
        finished = s.scalar(select(Event.id).where(Event.lead_id == lead.id, Event.type == "nurture_finished")
                            .limit(1))
        return finished is not None and not _told(s, lead.id, Ev.EMAIL_SENT, "nurture_finished")
    return lead.status == "no_answer" and _cadence_unreported(s, lead.id)


def _sweep_unreported(svc: Any, now: datetime) -> int:
    """Re-enqueue the 'Unreachable lead' email Redis lost (a restart without persistence, an enqueue
    while it was down): a failed lead, a cadence or a drip run out, with the managers never told."""
    with svc.sessions() as s:
        recent = s.scalars(select(Event.lead_id).distinct().where(
            Event.type.in_(UNREACHABLE_CUES), Event.at > now - UNREACHABLE_LOOKBACK,
            Event.at < now - timedelta(seconds=LOST_GRACE_S)).limit(200)).all()
        leads = [lead_id for lead_id in recent
                 if (lead := s.get(Lead, lead_id)) is not None and _unreported(s, lead)]
    handed = 0
    for lead_id in leads:
        if (job_lost(svc.redis, job_id(UNREACHABLE_JOB, lead_id), now)
                and enqueue(svc.queue, UNREACHABLE_JOB, lead_id, retry=ALERT_RETRY)):
            log.warning("the unreachable-lead email for %s was lost from Redis; enqueued again", lead_id)
            handed += 1
    return handed


def sweep_lost(svc: Any, now: datetime | None = None) -> int:
    """Re-enqueue alerts Redis lost: the managers' alert for a listed lead, the accepted-transfer text.

    Only a job missing from Redis (or left 'started' by a dead worker) counts; one that failed waits
    in RQ's failed registry for a person. Each job checks the timeline first, so a race sends nothing twice.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=LOST_GRACE_S)
    with svc.sessions() as s:
        listed = s.scalars(select(WaitingLead.lead_id).where(WaitingLead.assigned_at.is_(None),
                                                             WaitingLead.since < cutoff).limit(200)).all()
        steps = [(UNASSIGNED_JOB, lead_id, ALERT_RETRY) for lead_id in listed
                 if not _told_of_listing(s, lead_id, Ev.EMAIL_SENT)]
        accepted = s.scalars(select(Handoff).where(
            Handoff.mode == HandoffMode.WARM_TRANSFER.value, Handoff.status == HandoffStatus.ACKED.value,
            Handoff.created_at > now - ACCEPTED_LOOKBACK, Handoff.acked_at < cutoff).limit(200))
        steps += [(ACCEPTED_JOB, h.id, SEND_RETRY) for h in accepted
                  if not any(_already(s, h, kind, "accepted") for kind in (Ev.SMS_SENT, Ev.SMS_FAILED))]
    handed = 0
    for func, key, retry in steps:
        if job_lost(svc.redis, job_id(func, key), now) and enqueue(svc.queue, func, key, retry=retry):
            log.warning("%s for %s was lost from Redis; enqueued again", func, key)
            handed += 1
    return handed + tell_reps_lost(svc, now) + _sweep_unreported(svc, now)
