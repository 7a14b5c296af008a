"""A text from a lead stops its cadence and nurture; "call me", CALL or "ready" gets an instant callback."""

from __future__ import annotations

import re
from datetime import UTC
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import touches
from bot.compliance.gate import Verdict
from bot.runtime.services import Services
from bot.store.tables import Lead, LeadStatus, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import callback_planned

READY = {
    "call",
    "call me",
    "call me now",
    "call now",
    "please call",
    "please call me",
    "call me please",
    "ready",
    "i'm ready",
    "im ready",
    "i am ready",
    "ready now",
    "yes now",
    "yes call me",
    "now",
}
WITH_SALES = {
    LeadStatus.QUALIFIED.value,
    LeadStatus.TRANSFERRING.value,
    LeadStatus.HANDED_OFF.value,
    LeadStatus.OPTED_OUT.value,
}
# A reply stops the chase and the drip, never a callback it asked for a moment ago.
STOPPED_BY_REPLY = ("retry", "text", "voicemail_text", "fallback", "email", "nurture", "nudge", "quiet_end",
                    "email_wait")
# Its first call is about to go (the contact job) or ringing now: that call is the callback.
CALL_UNDER_WAY = {LeadStatus.RECEIVED.value, LeadStatus.CONTACTING.value}
CALLING_NOW = "Calling you now!"
CALLING_AT = "Thanks! We'll call you at {when}."


def is_ready(body: str) -> bool:
    """CALL, "call me", "ready", "yes, now" and close phrasings (punctuation and case ignored)."""
    return " ".join(re.sub(r"[^\w\s']", " ", body.casefold()).split()) in READY


def on_text(svc: Services, s: Session, phone: str, body: str) -> str | None:
    """Stop what was planned for the sender's lead; returns the reply when the text asked for a call."""
    lead = s.scalar(select(Lead).where(Lead.phone == phone).order_by(Lead.created_at.desc()).limit(1))
    if lead is None:
        return None
    ready = is_ready(body) and lead.status not in WITH_SALES
    reason = "the lead asked for a call" if ready else "the lead replied"
    if touches.cancel(s, lead.id, reason, STOPPED_BY_REPLY):
        s.commit()
    if not ready:
        return None
    return callback(svc, s, lead, body)


def callback(svc: Services, s: Session, lead: Lead, body: str) -> str:
    """An instant callback within the calling hours; a nurtured lead re-enters qualification.

    One call, not two: a lead whose first call is on its way (just received, or ringing now) or whose
    callback is already planned (CALL sent twice) gets no second one. A deferred lead's contact job
    stands down for the callback (touch_tables.callback_planned).
    """
    record(s, lead.id, "callback_requested", body=body[:200], was=lead.status)
    if lead.status in CALL_UNDER_WAY or callback_planned(s, lead.id):
        verdict = touches.touch_allowed(svc, s, lead, "call")
        s.commit()
        return _reply(lead, verdict)
    reach = touches.reach(s, lead.id)
    reach.round += 1
    reach.started_at, reach.calls, reach.next_index, reach.failed_in_row, reach.texted = None, 0, 0, 0, False
    reach.nurture = None
    if lead.status != LeadStatus.IN_CONVERSATION.value:
        lead.status, lead.status_reason = LeadStatus.QUEUED.value, "asked for a call back"
        lead.contact_due_at = None  # the call is a touch, which the touch sweeper keeps
    touches.plan(svc, s, lead.id, f"r{reach.round}:callback", "callback", "call", utcnow())
    verdict = touches.touch_allowed(svc, s, lead, "call")
    s.commit()
    return _reply(lead, verdict)


def _reply(lead: Lead, verdict: Verdict) -> str:
    """'Calling you now!', or when the calling hours let us."""
    if verdict.allowed or verdict.not_before is None:
        return CALLING_NOW if verdict.allowed else "Thanks for your reply."
    zone = ZoneInfo((lead.timezone or "America/New_York").split(",")[0])
    when = verdict.not_before.astimezone(UTC).astimezone(zone).strftime("%-I:%M %p on %A")
    return CALLING_AT.format(when=when)
