"""What a touch does when Twilio refuses it: retry, switch channel, or fail with the reason."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from bot.channels import nurture, touches
from bot.compliance import gate as compliance
from bot.runtime.services import Services
from bot.runtime.twilio_client import describe
from bot.store.tables import Attempt, Lead
from bot.store.timeline import record
from bot.store.touch_tables import Touch, TouchStatus

NOT_MOBILE, LANDLINE_OR_UNREACHABLE, UNSUBSCRIBED = 21614, 30006, 21610


class TransientTouchError(RuntimeError):
    """Twilio, the network or SMTP failed in a way a retry can fix; RQ runs the job again."""


def twilio_error(
    svc: Services,
    s: Session,
    lead: Lead,
    touch: Touch,
    attempt: Attempt,
    channel: str,
    exc: TwilioRestException,
) -> str:
    """5xx/429 retry; a number that cannot take texts or calls switches channel; the rest fail the touch."""
    detail = describe(exc)
    if exc.status >= 500 or exc.status == 429:
        touch.status, attempt.status, attempt.error = TouchStatus.PLANNED, "retry", detail[:500]
        s.commit()
        raise TransientTouchError(f"touch {touch.id}: {detail}")
    attempt.status, attempt.error = "failed", detail[:1000]
    reach = touches.reach(s, lead.id)
    if exc.code == UNSUBSCRIBED:
        compliance.opt_out(s, lead.phone, "twilio-21610")
    elif channel == "sms" and exc.code in (NOT_MOBILE, LANDLINE_OR_UNREACHABLE):
        reach.no_sms = True
    elif channel == "call":
        reach.no_voice = True
    touch.status, touch.reason = TouchStatus.FAILED, detail[:1000]
    record(s, lead.id, "touch_failed", kind=touch.kind, channel=channel, reason=detail[:500], touch=touch.id)
    nurture.step_ended(svc, s, lead, touch)
    if exc.code != UNSUBSCRIBED:
        from bot.channels.cadence import switch_channel

        switch_channel(svc, s, lead, touch, channel)
    s.commit()
    return "failed"


def text_failed(svc: Services, attempt_id: str, error_code: str | None) -> None:
    """A text came back undelivered: 30006 (a landline or unreachable carrier) means no more texts."""
    if str(error_code) not in (str(LANDLINE_OR_UNREACHABLE), str(NOT_MOBILE)):
        return
    with svc.sessions() as s:
        touch = s.scalar(select(Touch).where(Touch.attempt_id == attempt_id))
        lead = s.get(Lead, touch.lead_id) if touch else None
        if touch is None or lead is None:
            return
        touches.reach(s, lead.id).no_sms = True
        record(s, lead.id, "channel_switched", away_from="sms", reason=f"Twilio error {error_code}")
        from bot.channels.cadence import switch_channel

        switch_channel(svc, s, lead, touch, "sms")
        s.commit()
