"""Run one planned touch: claim it, ask the gate, pick a channel that still works, and send it once."""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from email.message import EmailMessage

import phonenumbers
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from bot.channels import callwatch, nurture, quiet, touch_errors, touches
from bot.compliance import gate as compliance
from bot.runtime import pacing
from bot.runtime.reconcile import created_since
from bot.runtime.services import Services
from bot.store.leads import newer_lead
from bot.store.tables import Attempt, Lead, LeadStatus, new_id, utcnow
from bot.store.timeline import EventType, record
from bot.store.touch_tables import Touch, TouchStatus
from handoff.mail import MailError, send_mail

log = logging.getLogger(__name__)

# A lead in these states is past being chased: its planned touches are dropped when they come due.
FINISHED = {
    LeadStatus.QUALIFIED.value,
    LeadStatus.TRANSFERRING.value,
    LeadStatus.HANDED_OFF.value,
    LeadStatus.DISQUALIFIED.value,
    LeadStatus.OPTED_OUT.value,
}
AMBIGUOUS = touches.AMBIGUOUS
SENT_EVENT = {"call": EventType.DIALING, "sms": EventType.SMS_SENT, "email": EventType.EMAIL_SENT}


TransientTouchError = touch_errors.TransientTouchError
text_failed = touch_errors.text_failed  # the SMS status webhook's entry point


def sms_capable(phone: str) -> bool:
    """False when phonenumbers knows the number is a fixed line (it cannot take texts)."""
    try:
        return phonenumbers.number_type(phonenumbers.parse(phone)) != phonenumbers.PhoneNumberType.FIXED_LINE
    except phonenumbers.NumberParseException:
        return True


def channel_for(s: Session, lead: Lead, touch: Touch) -> str | None:
    """The touch's channel, or the fallback when the number cannot take it; None when nothing fits."""
    reach = touches.reach(s, lead.id)
    no_sms = reach.no_sms or not sms_capable(lead.phone)
    if touch.channel == "call" and reach.no_voice:
        return "sms" if not no_sms else ("email" if lead.email else None)
    if touch.channel == "sms" and no_sms:
        if touch.kind == "nurture":
            return "email" if lead.email else None
        return "call" if touch.kind == "text" and not reach.no_voice else None
    if touch.channel == "email" and not lead.email:
        return None
    return touch.channel


def run_touch(svc: Services, touch_id: str) -> str:
    """RQ job body: send the touch once, or defer, block or cancel it with the reason."""
    with svc.sessions() as s:
        touch = s.get(Touch, touch_id)
        if touch is None or touch.status != TouchStatus.PLANNED:
            return "skipped"
        if touch.due_at > utcnow() + timedelta(
            seconds=2
        ):  # the real-time scheduler ran ahead of a moved clock
            touches.enqueue(svc, touch.id, touch.due_at, touch.kind)
            return "early"
        if not touches.claim(s, touch_id):
            return "skipped"
        try:
            return _run_claimed(svc, s, touch)
        except TransientTouchError:
            raise  # it put the touch back to 'planned' itself
        except Exception:
            # Anything else (the database went away, a bug) left the touch 'sending', where RQ's retry
            # skipped it and no sweeper looked: a "Calling you now!" that never called.
            s.rollback()
            touches.release_claim(s, touch_id)
            raise


def _run_claimed(svc: Services, s: Session, touch: Touch) -> str:
    """run_touch() once the touch is claimed ('sending')."""
    s.refresh(touch)
    lead = s.get_one(Lead, touch.lead_id)
    if (adopted := _adopt_existing(svc, s, lead, touch)) is not None:
        return adopted
    if touch.kind == callwatch.WATCH:
        return _close(s, lead, touch, *callwatch.check(svc, s, lead, touch))
    if lead.status in FINISHED:
        return _close(s, lead, touch, TouchStatus.CANCELLED, f"lead is {lead.status}")
    if newer_lead(s, lead):  # a new submission after the dedupe window is its own lead
        return _close(s, lead, touch, TouchStatus.CANCELLED, "new submission")
    if touch.kind == quiet.EMAIL_WAIT:
        return _close(s, lead, touch, *quiet.email_unanswered(svc, s, lead, touch))
    if touch.kind in quiet.KINDS:
        if not quiet.still_waiting(s, touch):
            return _close(s, lead, touch, TouchStatus.CANCELLED, "the conversation moved on")
        if touch.kind == quiet.GONE_QUIET:
            return _close(s, lead, touch, TouchStatus.DONE, quiet.gone_quiet(svc, s, lead, touch))
    channel = channel_for(s, lead, touch)
    if channel is None:
        nurture.step_ended(svc, s, lead, touch)
        return _close(s, lead, touch, TouchStatus.CANCELLED, "the number cannot take this channel")
    verdict = touches.touch_allowed(svc, s, lead, channel)
    if not verdict.allowed:
        return _held(svc, s, lead, touch, verdict)
    content = _content(svc, s, lead, touch, channel)
    if content is None:
        nurture.step_ended(svc, s, lead, touch)
        return _close(s, lead, touch, TouchStatus.CANCELLED, "condition not met")
    return _send(svc, s, lead, touch, channel, content)


def _close(s: Session, lead: Lead, touch: Touch, status: str, reason: str) -> str:
    touch.status, touch.reason = status, reason
    record(
        s, lead.id, f"touch_{status}", kind=touch.kind, channel=touch.channel, reason=reason, touch=touch.id
    )
    s.commit()
    return status


def _held(svc: Services, s: Session, lead: Lead, touch: Touch, verdict: compliance.Verdict) -> str:
    """Outside the window: due again when it opens. Never allowed: blocked, with the rule."""
    if verdict.not_before is None:
        reason = "blocked: opted out" if verdict.rule == "opt-out" else f"blocked: {verdict.reason}"
        nurture.step_ended(svc, s, lead, touch)
        return _close(s, lead, touch, TouchStatus.BLOCKED, reason)
    due = verdict.not_before.astimezone(UTC).replace(tzinfo=None)
    touch.status, touch.due_at, touch.reason = TouchStatus.PLANNED, due, verdict.reason
    record(
        s,
        lead.id,
        "touch_deferred",
        kind=touch.kind,
        reason=verdict.reason,
        rule=verdict.rule,
        due=due.isoformat() + "Z",
        touch=touch.id,
    )
    touches.schedule_on_commit(svc, s, touch.id, due, touch.kind)
    s.commit()
    return "deferred"


def _content(
    svc: Services, s: Session, lead: Lead, touch: Touch, channel: str
) -> tuple[str | None, str] | None:
    """(email subject, body); None when a nurture step's condition does not hold."""
    if touch.kind == "nurture":
        return nurture.step_content(svc, lead, touch)
    if touch.kind == quiet.NUDGE:
        return None, quiet.nudge(svc, s, lead, touch) or ""
    if channel == "sms" and touch.kind in ("text", "fallback"):
        from bot.channels.resume import resume_sms

        return None, resume_sms(svc, s, lead) or touch.body or ""
    return None, touch.body or ""


def _attempt(s: Session, lead: Lead, touch: Touch, channel: str) -> Attempt:
    """The touch's one attempt row (reused when RQ runs the job again after a transient failure)."""
    if touch.attempt_id and (found := s.get(Attempt, touch.attempt_id)) is not None:
        found.tries += 1
        return found
    number = 1 + s.scalar(select(func.count()).where(Attempt.lead_id == lead.id))
    attempt = Attempt(id=new_id(), lead_id=lead.id, number=number, channel=channel, status="placing", tries=1)
    s.add(attempt)
    touch.attempt_id = attempt.id
    return attempt


def _send(
    svc: Services, s: Session, lead: Lead, touch: Touch, channel: str, content: tuple[str | None, str]
) -> str:
    attempt = _attempt(s, lead, touch, channel)
    was = lead.status, lead.status_reason
    if channel == "call" and lead.status != LeadStatus.IN_CONVERSATION.value:
        lead.status, lead.status_reason = LeadStatus.CONTACTING.value, f"{touch.kind} call"
    s.commit()  # the attempt exists before Twilio can call back about it
    started = utcnow()
    gate_again = pacing.recheck.set(lambda: touches.require_allowed(svc, s, lead, channel))
    try:
        sid = _request(svc, lead, attempt, channel, *content)
    except pacing.SendStopped as stop:  # the wait for a TWILIO_CPS turn outlasted the window or consent
        attempt.status, attempt.error = "failed", f"not sent: {stop.verdict.reason}"[:1000]
        lead.status, lead.status_reason = was
        return _held(svc, s, lead, touch, stop.verdict)
    except TwilioRestException as exc:
        return touch_errors.twilio_error(svc, s, lead, touch, attempt, channel, exc)
    except (requests.exceptions.RequestException, MailError) as exc:
        # A read timeout may have reached Twilio: the next try looks for what it created first.
        lost = isinstance(exc, requests.exceptions.Timeout) and not isinstance(
            exc, requests.exceptions.ConnectTimeout
        )
        touch.status, attempt.status = TouchStatus.PLANNED, "retry"
        attempt.error = AMBIGUOUS if lost else str(exc)[:500]
        s.commit()
        raise TransientTouchError(f"touch {touch.id}: {exc}") from exc
    finally:
        pacing.recheck.reset(gate_again)
    return _sent(svc, s, lead, touch, attempt, channel, sid, at=started)


def _sent(
    svc: Services, s: Session, lead: Lead, touch: Touch, attempt: Attempt, channel: str, sid: str,
    **data: object,
) -> str:
    """Record the touch as sent (or adopted) with its SID; a nudge plans the next one."""
    attempt.status, attempt.provider_sid, attempt.error = "placed", sid, None
    touch.status = TouchStatus.SENT
    if touch.kind == quiet.NUDGE:
        quiet.nudged(svc, s, lead, touch)
    elif touch.kind == "nurture":
        nurture.after_step(svc, s, lead, touch)
    record(
        s,
        lead.id,
        SENT_EVENT[channel],
        sid=sid,
        attempt=attempt.number,
        touch=touch.kind,
        **({"step": touch.step} if touch.step else {}),
        **data,
    )
    s.commit()
    return sid


def _adopt_existing(svc: Services, s: Session, lead: Lead, touch: Touch) -> str | None:
    """The last try timed out waiting for Twilio: adopt the call or text it created, if any.

    Runs before every other check, since a call Twilio placed is placed whatever has changed since.
    """
    attempt = s.get(Attempt, touch.attempt_id) if touch.attempt_id else None
    if attempt is None or attempt.error != AMBIGUOUS:
        return None
    known = set(s.scalars(select(Attempt.provider_sid).where(Attempt.lead_id == lead.id,
                                                             Attempt.provider_sid.is_not(None))))
    sid = created_since(svc, attempt.channel, lead.phone, attempt.created_at, known)
    if sid is None:
        attempt.error = "timed out; Twilio has no such call or text: sending again"
        return None
    return _sent(svc, s, lead, touch, attempt, attempt.channel, sid, adopted=True)


def _request(
    svc: Services, lead: Lead, attempt: Attempt, channel: str, subject: str | None, body: str
) -> str:
    """The one Twilio (or SMTP) request; returns its SID or Message-ID."""
    base, sender = svc.settings.base_url, svc.settings.caller_id
    if channel == "call":
        from bot.channels.amd import call_options

        return svc.twilio.calls.create(to=lead.phone, from_=sender, **call_options(svc, attempt.id)).sid
    if channel == "sms":
        return svc.twilio.messages.create(
            to=lead.phone, from_=sender, body=body, status_callback=f"{base}/twilio/status/sms/{attempt.id}"
        ).sid
    msg = EmailMessage()
    msg["From"], msg["To"] = svc.settings.mail_from, lead.email
    msg["Subject"] = subject or f"Your {lead.service or 'service'} request"
    msg["X-Leadbot-Lead-Id"] = lead.id
    msg.set_content(body)
    receipt = send_mail(svc.settings, msg, svc.sessions)
    return receipt.message_id or msg.get("Message-ID", "") or f"email-{attempt.id}"
