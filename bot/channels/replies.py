"""A text from a lead stops its cadence and nurture; "call me", CALL or "ready" gets an instant callback."""

from __future__ import annotations

import re
from datetime import UTC
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import touches
from bot.runtime.services import Services
from bot.store.tables import Lead, LeadStatus, utcnow
from bot.store.timeline import record

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
    """An instant callback within the calling hours; a nurtured lead re-enters qualification."""
    record(s, lead.id, "callback_requested", body=body[:200], was=lead.status)
    reach = touches.reach(s, lead.id)
    reach.round += 1
    reach.started_at, reach.calls, reach.next_index, reach.failed_in_row, reach.texted = None, 0, 0, 0, False
    reach.nurture = None
    if lead.status != LeadStatus.IN_CONVERSATION.value:
        lead.status, lead.status_reason = LeadStatus.QUEUED.value, "asked for a call back"
    touches.plan(svc, s, lead.id, f"r{reach.round}:callback", "callback", "call", utcnow())
    verdict = touches.touch_allowed(svc, s, lead, "call")
    s.commit()
    if verdict.allowed or verdict.not_before is None:
        return CALLING_NOW if verdict.allowed else "Thanks for your reply."
    zone = ZoneInfo((lead.timezone or "America/New_York").split(",")[0])
    when = verdict.not_before.astimezone(UTC).astimezone(zone).strftime("%-I:%M %p on %A")
    return CALLING_AT.format(when=when)
