"""The contact job: gate, claim an attempt exactly once, and place the call or first text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import cast

import requests
from rq import get_current_job
from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from twilio.base.exceptions import TwilioRestException

from bot.channels import touches
from bot.channels.amd import call_options
from bot.compliance import gate as compliance
from bot.runtime import crm, pacing
from bot.runtime.queueing import contact_meta
from bot.runtime.reconcile import created_since
from bot.runtime.services import Services, current
from bot.runtime.twilio_client import describe
from bot.store import clock
from bot.store.leads import insert_event, newer_lead
from bot.store.prepared import joined
from bot.store.tables import DISPATCHABLE, Attempt, Lead, LeadStatus, new_id, utcnow
from bot.store.timeline import EventType, record
from bot.store.touch_tables import callback_planned, contact_attempt
from handoff.defaults import UNREACHABLE_JOB
from handoff.mail import MailError
from handoff.scheduling import enqueue_after_commit
from handoff.waiting import ALERT_RETRY

log = logging.getLogger(__name__)

SENT_EVENT = {"call": EventType.DIALING, "sms": EventType.SMS_SENT, "email": EventType.EMAIL_SENT}
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
LEADS, ATTEMPTS = cast(Table, Lead.__table__), cast(Table, Attempt.__table__)

# Statements built once: building one per job costs four times what executing it does.
LEAD_BY_ID = select(*LEADS.c).where(LEADS.c.id == bindparam("lead_id"))
COUNT_ATTEMPTS = select(func.count()).where(ATTEMPTS.c.lead_id == bindparam("lead_id"))
# OR of equalities rather than IN: an IN list is expanded per execution, which bot.store.prepared skips.
CLAIM_LEAD = (update(LEADS)
              .where(LEADS.c.id == bindparam("lead_id"),
                     or_(*(LEADS.c.status == st for st in sorted(DISPATCHABLE))))
              .values(status=LeadStatus.CONTACTING.value, updated_at=bindparam("at"), contact_due_at=None))
INSERT_ATTEMPT = insert(ATTEMPTS)
MARK_PLACED = (update(ATTEMPTS)
               .where(ATTEMPTS.c.id == bindparam("attempt_id"))
               .values(status="placed", provider_sid=bindparam("sid"), error=None,
                       updated_at=bindparam("at")))


OPTED_OUT = compliance.Verdict(False, "opted out", "opt-out")


class TransientDialError(RuntimeError):
    """Twilio or the network failed in a way a retry can fix; RQ retries the job."""

    def __init__(self, lead_id: str, detail: str) -> None:
        super().__init__(f"lead {lead_id}: {detail}")
        self.lead_id = lead_id


def contact(lead_id: str) -> str:
    """RQ job: contact a lead once. Safe to run twice, concurrently, or after a crash."""
    svc = current()
    # One session for claim and place: the lead and attempt rows are not read twice.
    with svc.sessions() as s:
        claimed = _claim(svc, s, lead_id)
        if claimed is None:
            return "skipped"
        return _place(svc, s, *claimed)


def _queued_at() -> datetime | None:
    """When the running job was enqueued (naive UTC), for the 'queued' event."""
    job = get_current_job()
    if job is None or job.enqueued_at is None:
        return None
    at = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
    return clock.shifted(at).astimezone(UTC).replace(tzinfo=None)


def claim(svc: Services, lead_id: str, now: datetime | None = None) -> str | None:
    """Move the lead to 'contacting' and open an attempt, or resume one awaiting retry."""
    with svc.sessions() as s:
        claimed = _claim(svc, s, lead_id, now)
        return claimed[0].id if claimed is not None else None


def _claim(
    svc: Services, s, lead_id: str, now: datetime | None = None  # noqa: ANN001
) -> tuple[Attempt, Lead] | None:
    """claim() on a given session; returns the attempt to place (committed as 'placing') and its lead."""
    lead = _load_lead(s, lead_id)
    if lead is None:
        log.error("contact job for unknown lead %s", lead_id)
        return None
    if lead.status == LeadStatus.CONTACTING.value:
        # A retry of our own attempt: take it only if it is parked for retry (never 'placing').
        res = s.execute(update(Attempt).where(Attempt.lead_id == lead_id, Attempt.status == "retry",
                                              contact_attempt())
                        .values(status="placing", tries=Attempt.tries + 1))
        s.commit()
        if res.rowcount != 1:
            return None
        attempt = s.scalar(select(Attempt).where(Attempt.lead_id == lead_id, Attempt.status == "placing",
                                                 contact_attempt()))
        return (attempt, lead) if attempt is not None else None
    if lead.status not in DISPATCHABLE:
        if lead.status == LeadStatus.OPTED_OUT.value:  # a touch planned before the opt-out: say it stopped
            compliance.record_verdict(s, lead_id, OPTED_OUT, lead.channel)
            s.commit()
        return None
    was_received = lead.status == LeadStatus.RECEIVED.value
    # A deferred or re-sent contact job due with the callback the lead asked for would be two calls.
    if not was_received and callback_planned(s, lead_id):  # its call will come from that touch
        record(s, lead_id, "contact_skipped", reason="a call back the lead asked for is planned")
        s.commit()
        return None
    verdict = compliance.check_touch(svc, s, lead, lead.channel, now)
    if was_received and svc.settings.ack_text and lead.channel == "call":
        from bot.jobs.ack import enqueue_ack

        enqueue_ack(svc, lead.id, verdict.next_at if not verdict.allowed else None)
    if not verdict.allowed:
        if was_received:
            record(s, lead_id, EventType.QUEUED, at=_queued_at())
        _hold(svc, s, lead, verdict)
        s.commit()
        return None
    if not was_received and (newer := newer_lead(s, lead)) is not None:
        _superseded(s, lead, newer)
        s.commit()
        return None
    return _open_attempt(svc, s, lead, was_received)


def _superseded(s, lead: Lead, newer: str) -> None:  # noqa: ANN001
    """The form sent twice at night: both deferred to the morning, and the newer one speaks for the
    number (as for touches). Two calls at 08:00 otherwise."""
    lead.status, lead.contact_due_at = LeadStatus.DISQUALIFIED.value, None
    lead.status_reason = f"superseded by a newer request from this number (lead {newer})"
    record(s, lead.id, "superseded", by=newer)


def _load_lead(s, lead_id: str) -> Lead | None:  # noqa: ANN001
    """The lead as an ORM object in `s`, read with one prepared SELECT (the ORM's get costs ~3× more)."""
    row = joined(s.connection()).first(LEAD_BY_ID, {"lead_id": lead_id})
    if row is None:
        return None
    lead = Lead(**row._asdict())
    make_transient_to_detached(lead)  # as if loaded: later changes flush as UPDATEs
    s.add(lead)
    return lead


def _open_attempt(svc: Services, s, lead: Lead, was_received: bool) -> tuple[Attempt, Lead] | None:  # noqa: ANN001
    """Flip the lead to 'contacting' and insert its attempt, or None when another worker won.

    Prepared statements in the session's transaction (bot.store.prepared), reads before the first write:
    SQLite's write lock is held for one UPDATE and two INSERTs, inside the cross-process writer
    lock (bot.store.database.WriterLock); the session has written nothing before.
    """
    conn = joined(s.connection())
    number = 1 + conn.first(COUNT_ATTEMPTS, {"lead_id": lead.id})[0]
    at = utcnow()
    row = {"id": new_id(), "lead_id": lead.id, "number": number, "channel": lead.channel,
           "status": "placing", "provider_sid": None, "call_status": None, "error": None, "tries": 1,
           "created_at": at, "updated_at": at}
    queued_at = _queued_at() if was_received else None
    with svc.writer.held():
        res = conn.execute(CLAIM_LEAD, {"lead_id": lead.id, "at": at})
        if res.rowcount != 1:  # another worker claimed it between our read and this update
            s.rollback()
            return None
        try:
            conn.execute(INSERT_ATTEMPT, row)
            if was_received:
                insert_event(conn, lead.id, EventType.QUEUED, at=queued_at)
            s.commit()
        except IntegrityError:  # another worker opened this attempt first
            s.rollback()
            return None
    set_committed_value(lead, "status", LeadStatus.CONTACTING.value)
    set_committed_value(lead, "updated_at", at)
    # Attach the row we just wrote as if loaded, so the failure paths can update it with the ORM.
    attempt = Attempt(**row)
    make_transient_to_detached(attempt)
    s.add(attempt)
    return attempt, lead


def _hold(svc: Services, s, lead: Lead, verdict: compliance.Verdict) -> None:  # noqa: ANN001
    """Not now: schedule for the next allowed moment. Never allowed: stop for good. Either way, say why."""
    compliance.record_verdict(s, lead.id, verdict, lead.channel)
    if verdict.next_at is not None:
        lead.status, lead.status_reason = LeadStatus.SCHEDULED.value, verdict.reason
        at = verdict.next_at.astimezone(UTC)
        lead.contact_due_at = at.replace(tzinfo=None)  # the sweeper's cue, should Redis lose the job
        svc.queue.enqueue_at(at, "bot.jobs.dispatch.contact", lead.id,
                             job_id=f"contact-{lead.id}-{int(at.timestamp())}", meta=contact_meta(lead.channel))
        return
    lead.status = (LeadStatus.OPTED_OUT if verdict.rule == "opt-out" else LeadStatus.FAILED).value
    lead.status_reason, lead.contact_due_at = verdict.reason, None
    crm.emit(svc, s, lead.id, "lead.opted_out" if verdict.rule == "opt-out" else "lead.failed")
    if verdict.rule != "opt-out":  # a state that allows no automated call, no consent: a person calls
        enqueue_after_commit(s, svc.queue, UNREACHABLE_JOB, lead.id, retry=ALERT_RETRY)


def place(svc: Services, attempt_id: str) -> str:
    """Make the one Twilio request for this attempt and record what happened."""
    with svc.sessions() as s:
        attempt = s.get_one(Attempt, attempt_id)
        return _place(svc, s, attempt, s.get_one(Lead, attempt.lead_id))


def _place(svc: Services, s, attempt: Attempt, lead: Lead) -> str:  # noqa: ANN001
    """place() on a given session, with the attempt and its lead already loaded."""
    if attempt.error == "ambiguous" and _adopt_existing(svc, s, attempt, lead):
        return "adopted"
    if attempt.tries > 1:  # a retry, seconds or (after a sweep) hours later: the whole gate again
        verdict = compliance.check_touch(svc, s, lead, lead.channel, clock.now())
        if not verdict.allowed:  # opted out meanwhile, or the window closed: held, never dialled
            attempt.status, attempt.error = "failed", f"not retried: {verdict.reason}"[:1000]
            _hold(svc, s, lead, verdict)
            s.commit()
            return "blocked" if verdict.next_at is None else "deferred"
    started = utcnow()
    gate_again = pacing.recheck.set(lambda: touches.require_allowed(svc, s, lead, lead.channel))
    try:
        sid = _send(svc, s, lead, attempt)
    except pacing.SendStopped as stop:  # the wait for a TWILIO_CPS turn outlasted the window or consent
        attempt.status, attempt.error = "failed", f"not sent: {stop.verdict.reason}"[:1000]
        _hold(svc, s, lead, stop.verdict)
        s.commit()
        return "blocked" if stop.verdict.next_at is None else "deferred"
    except TwilioRestException as exc:
        return _twilio_failed(svc, s, lead, attempt, exc)
    except requests.exceptions.ConnectTimeout as exc:
        return _transient(svc, s, lead, attempt, f"connect timeout: {exc}", ambiguous=False)
    except requests.exceptions.Timeout as exc:  # sent, but no answer: a call may exist
        return _transient(svc, s, lead, attempt, f"timeout: {exc}", ambiguous=True)
    except requests.exceptions.ConnectionError as exc:
        return _transient(svc, s, lead, attempt, f"connection error: {exc}", ambiguous=False)
    except MailError as exc:  # the SMTP server refused or was unreachable: try again later
        return _transient(svc, s, lead, attempt, f"mail: {exc}", ambiguous=False)
    finally:
        pacing.recheck.reset(gate_again)
    kind = SENT_EVENT[lead.channel]
    conn = joined(s.connection())
    conn.execute(MARK_PLACED, {"attempt_id": attempt.id, "sid": sid, "at": utcnow()})
    insert_event(conn, lead.id, kind, at=started, sid=sid, attempt=attempt.number)
    crm.emit(svc, s, lead.id, "lead.contacted")
    s.commit()
    return sid


def _send(svc: Services, s, lead: Lead, attempt: Attempt) -> str:  # noqa: ANN001
    """Place the call, or send the first text of the flow; returns Twilio's SID."""
    base = svc.settings.base_url
    if lead.channel == "sms":
        from bot.channels.text import start_sms

        # Wait for the TWILIO_CPS slot before start_sms opens a write transaction, not while it holds one.
        pacing.after_wait(svc.limiter.acquire())
        pacing.prepaid.set(True)
        body = start_sms(svc, s, lead)
        msg = svc.twilio.messages.create(
            to=lead.phone, from_=svc.settings.caller_id, body=body,
            status_callback=f"{base}/twilio/status/sms/{attempt.id}",
        )
        return msg.sid
    if lead.channel == "email":
        from bot.channels.text import start_email

        return start_email(svc, s, lead)
    # Asynchronous AMD: a person hears the greeting at once; a machine gets the voicemail (bot.channels.amd).
    call = svc.twilio.calls.create(to=lead.phone, from_=svc.settings.caller_id, **call_options(svc, attempt.id))
    return call.sid


def _adopt_existing(svc: Services, s, attempt: Attempt, lead: Lead) -> bool:  # noqa: ANN001
    """After an unanswered request, look for the call or text Twilio may have created before retrying."""
    sid = created_since(svc, lead.channel, lead.phone, attempt.created_at)
    if sid is None:
        return False
    attempt.status, attempt.provider_sid, attempt.error = "placed", sid, None
    record(s, lead.id, SENT_EVENT[lead.channel], sid=sid, attempt=attempt.number, adopted=True)
    s.commit()
    return True


def _retries_left() -> int:
    """How many RQ retries this job still has (0 outside a worker)."""
    job = get_current_job()
    return int(job.retries_left or 0) if job is not None else 0


def _transient(svc: Services, s, lead: Lead, attempt: Attempt, detail: str, ambiguous: bool) -> str:  # noqa: ANN001
    """Park the attempt for an RQ retry, or fail the lead when retries are used up."""
    if _retries_left() <= 0:
        return _fail(svc, s, lead, attempt, f"gave up after {attempt.tries} tries: {detail}")
    attempt.status, attempt.error = "retry", ("ambiguous" if ambiguous else detail[:500])
    record(s, lead.id, EventType.DIAL_RETRY, detail=detail[:500], attempt=attempt.number, tries=attempt.tries)
    s.commit()
    raise TransientDialError(lead.id, detail)


def _twilio_failed(svc: Services, s, lead: Lead, attempt: Attempt, exc: TwilioRestException) -> str:  # noqa: ANN001
    """5xx and 429 are retried; every other Twilio error is permanent and fails the lead."""
    detail = describe(exc)
    if exc.status >= 500 or exc.status == 429:
        return _transient(svc, s, lead, attempt, detail, ambiguous=False)
    if exc.code == 21610:  # the number texted STOP to our sender: honour it everywhere
        compliance.opt_out(s, lead.phone, "twilio-21610")
    return _fail(svc, s, lead, attempt, detail)


def _fail(svc: Services, s, lead: Lead, attempt: Attempt, reason: str) -> str:  # noqa: ANN001
    """Mark the attempt and lead failed, with the reason in the timeline."""
    attempt.status, attempt.error = "failed", reason[:1000]
    lead.status, lead.status_reason = LeadStatus.FAILED.value, reason[:1000]
    record(s, lead.id, EventType.DIAL_FAILED, reason=reason[:1000], attempt=attempt.number)
    crm.emit(svc, s, lead.id, "lead.failed")
    # Nobody hears of a lead that cannot be reached unless we say so: the managers get an email.
    enqueue_after_commit(s, svc.queue, UNREACHABLE_JOB, lead.id, retry=ALERT_RETRY)
    s.commit()
    return "failed"
