"""A call to our number that ends mid-questions is a cut-off call, like an outbound one.

An outbound call names its status callback, and a hang-up mid-flow reaches `cadence.call_ended`. An
inbound call does not (its status callback is set on the Twilio number, if at all), and a Gather
whose caller hung up never posts its action: the lead stayed `in_conversation` for ever, its
retries cancelled by the call, nobody told. So each inbound conversation is watched: a live call
turns every few seconds (a silent caller's Gather times out and posts too), so one that has not
moved for WATCH_AFTER is over. It is then closed as cut off and the cadence plans the call back,
which resumes at the step where it stopped. `/twilio/voice/status`, when the number's call status
callback points there, does the same at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import cadence, touches
from bot.runtime.services import Services
from bot.store.tables import Conversation, Lead, utcnow
from bot.store.touch_tables import Touch, TouchStatus

WATCH = "call_watch"
WATCH_AFTER = timedelta(minutes=5)
ENDED = {"completed", "busy", "failed", "no-answer", "canceled"}


def watch(svc: Services, s: Session, lead: Lead, conv: Conversation, since: datetime | None = None) -> None:
    """Look at the conversation again WATCH_AFTER past its last turn (`since`, default now); `step`
    keeps the turn it was on."""
    s.flush()
    turns = (conv.state or {}).get("turns", 0)
    due = max((since or utcnow()) + WATCH_AFTER, utcnow() + timedelta(seconds=1))
    touches.plan(svc, s, lead.id, f"watch:{conv.id}:{turns}", WATCH, "call", due, step=str(turns))


def check(svc: Services, s: Session, lead: Lead, touch: Touch) -> tuple[str, str]:
    """The watch came due: (touch status, reason). Moved on: watch again. Still: cut off."""
    conv_id = touch.key.split(":")[1]
    conv = s.get(Conversation, conv_id)
    if conv is None or not conv.open or (conv.state or {}).get("done"):
        return TouchStatus.DONE, "the conversation ended"
    if str((conv.state or {}).get("turns", 0)) != touch.step:
        s.refresh(conv, ["state", "updated_at"])  # a turn saves them with a Core statement
        if conv.updated_at + WATCH_AFTER > utcnow():
            watch(svc, s, lead, conv, since=conv.updated_at)
            return TouchStatus.DONE, "the conversation moved on"
    _cut_off(svc, s, lead, conv)
    return TouchStatus.DONE, f"no turn for {int(WATCH_AFTER.total_seconds() // 60)} min: the call was cut off"


def status(svc: Services, call_sid: str, call_status: str) -> bool:
    """The number's call status callback: an inbound call that ended with its conversation open is
    cut off now. True when it was."""
    if call_status not in ENDED or not call_sid:
        return False
    with svc.sessions() as s:
        conv = s.scalar(select(Conversation).where(Conversation.call_sid == call_sid, Conversation.open.is_(True),
                                                   Conversation.channel == "voice").limit(1))
        lead = s.get(Lead, conv.lead_id) if conv is not None else None
        if conv is None or lead is None or (conv.state or {}).get("done"):
            return False
        touches.cancel(s, lead.id, "the call ended", (WATCH,))
        _cut_off(svc, s, lead, conv)
        s.commit()
    return True


def _cut_off(svc: Services, s: Session, lead: Lead, conv: Conversation) -> None:
    cadence.cut_off(s, lead, conv)
    cadence.unanswered(svc, s, lead, "cut-off")
