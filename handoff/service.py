"""What the channels call when a flow ends qualified: live transfer, SMS handoff, and reps' replies.

Every function works inside the caller's session and never commits it; jobs that need
the new rows are enqueued only after the caller commits. Nothing here calls Twilio.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from bot.flows.safetext import xml_safe
from bot.runtime import crm
from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import Lead, utcnow
from bot.store.timeline import record
from handoff import acks, transfer
from handoff.answer_text import readable_answers
from handoff.defaults import DEFAULT_TRANSFER_TRIES, ESCALATE_JOB, REMIND_JOB, SEND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.matching import Match
from handoff.notify import spoken_time
from handoff.offers import find_match, offer_sms, record_match
from handoff.roster import HandoffError
from handoff.roster_cache import rep_for, roster_for
from handoff.scheduling import after_commit, cancel
from handoff.twiml import NEXT_SHIFT, NO_SPECIALIST, hold_in_conference
from handoff.waiting import offer_waiting, put_on_list, reason_from

__all__ = ["begin_sms_handoff", "begin_warm_transfer", "cancel_handoffs", "rep_reply", "roster_for"]

log = logging.getLogger(__name__)


def _say(response: VoiceResponse, text: str, outcome: Any) -> None:
    """Say in the flow's voice, so the prospect hears the same person."""
    voice = getattr(outcome, "voice", "") or None
    response.say(xml_safe(text), **({"voice": voice} if voice else {}))


def _nobody_now(svc: Any, session: Session, lead: Lead, match: Match | None, why: dict[str, Any],
                answers: dict[str, str]) -> datetime | None:
    """No rep can be offered the lead now: the unassigned list and the managers. Returns the next shift's
    start when that is what the lead waits for (so the prospect can be told when), else None."""
    reason = reason_from(why, lead.service)
    off_shift = match is not None and reason.endswith("off shift")
    if off_shift and match is not None and match.available_at is not None:
        reason += f"; first back: {match.rep.name} at {match.available_at.isoformat()}"
    back = match.available_at if off_shift and match is not None else None
    put_on_list(svc, session, lead, reason, why, answers, next_shift=back)
    return back


def begin_warm_transfer(svc: Any, session: Session, lead: Lead, outcome: Any, call_sid: str,
                        response: VoiceResponse, *, now: datetime | None = None) -> None:
    """Put the prospect on hold in a named conference and dial the matched rep (from a job).

    With nobody free now the lead goes on the unassigned list (managers told at once) and the
    prospect hears when a specialist will call; ``response`` then ends with a hangup.
    """
    now = now or utcnow()
    answers = readable_answers(lead.answers, getattr(outcome, "answers", None))
    try:
        roster = roster_for(svc)
    except HandoffError as exc:  # no valid roster was ever loaded: nobody to offer the lead to
        put_on_list(svc, session, lead, f"roster unusable: {exc}", answers=answers)
        _say(response, NO_SPECIALIST, outcome)
        response.hangup()
        return
    offer_waiting(svc, session, now, roster)  # leads that waited longer get a free rep first
    match, why = find_match(svc, session, roster, lead, now)
    if match is None or not match.immediate:
        back = _nobody_now(svc, session, lead, match, why, answers)
        if back is None or match is None:
            _say(response, NO_SPECIALIST, outcome)
        else:
            zone = lead.timezone or (match.rep.hours.timezone if match.rep.hours else None)
            when = spoken_time(back, zone, now)
            _say(response, NEXT_SHIFT.format(rep=match.rep.name.split(" ")[0], when=when), outcome)
        response.hangup()
        return
    record_match(session, lead, match, HandoffMode.WARM_TRANSFER)
    crm.emit(svc, session, lead.id, "lead.handed_off")
    candidates = [match.rep.key, *(r.key for r in match.fallbacks)]
    t, _first = transfer.start(svc, session, lead, candidates, answers, call_sid,
                               getattr(outcome, "voice", "") or None, DEFAULT_TRANSFER_TRIES, now)
    hold_in_conference(response, t.conference, hold_url=transfer.webhook_url(svc, "hold", t.id, n=1),
                       events_url=transfer.webhook_url(svc, "conference", t.id),
                       after_url=transfer.webhook_url(svc, "after", t.id))


def begin_sms_handoff(svc: Any, session: Session, lead: Lead, outcome: Any, reason: str | None = None, *,
                      now: datetime | None = None) -> None:
    """Text the lead to the matched rep with the backup email and SLA; nobody free: the unassigned list."""
    now = now or utcnow()
    answers = readable_answers(lead.answers, getattr(outcome, "answers", None))
    try:
        roster = roster_for(svc)
    except HandoffError as exc:
        put_on_list(svc, session, lead, f"roster unusable: {exc}", answers=answers)
        return
    offer_waiting(svc, session, now, roster)  # leads that waited longer get a free rep first
    match, why = find_match(svc, session, roster, lead, now)
    if match is None or not match.immediate:
        _nobody_now(svc, session, lead, match, why, answers)
        return
    record_match(session, lead, match, HandoffMode.SMS)
    crm.emit(svc, session, lead.id, "lead.handed_off")
    offer_sms(svc, session, lead, match.rep, answers=answers, queue=[r.key for r in match.fallbacks],
              reason=reason)


def rep_reply(svc: Any, session: Session, from_phone: str, body: str, *,
              now: datetime | None = None) -> str | None:
    """A text from a salesperson acknowledges their newest open handoff; None when the sender is not a rep.

    Args:
        from_phone: the sender in E.164, as Twilio sends it.

    Returns:
        The reply to text back, or None so the prospect's conversation handles the message.
    """
    try:
        roster = roster_for(svc)
    except HandoffError as exc:
        log.error("rep_reply without a roster: %s", exc)
        return None
    try:
        rep = roster.rep(from_phone)
    except KeyError:
        # Someone removed from the roster may still answer a handoff they were given.
        row = session.scalar(select(Handoff).where(Handoff.rep_phone == from_phone)
                             .order_by(Handoff.created_at.desc()).limit(1))
        if row is None:
            return None
        rep = rep_for(roster, row.rep_phone, row.rep_name, row.rep_email)
    return acks.acknowledge(svc, session, rep, body, now)


def cancel_handoffs(svc: Any, session: Session, lead_id: str, reason: str, blocked: str | None = None) -> int:
    """The lead withdrew (opted out, duplicate): stop its unacknowledged handoffs and their timers.

    With `blocked` (an opt-out), each rep reminder not yet sent is put in the timeline as blocked with
    that reason, like the lead's own touches. A live transfer in progress is left to its own callbacks.
    Returns how many were cancelled.
    """
    rows = session.execute(select(Handoff.id, Handoff.reminded_at, Handoff.due_at, Handoff.rep_name).where(
        Handoff.lead_id == lead_id, Handoff.status == HandoffStatus.OPEN.value,
        Handoff.mode == HandoffMode.SMS.value)).all()
    ids = [row.id for row in rows]
    if not ids:
        return 0
    for row in rows:
        if blocked and row.reminded_at is None and row.due_at is not None:
            record(session, lead_id, "touch_blocked", kind="rep_reminder", channel="sms", rep=row.rep_name,
                   reason=blocked, handoff=row.id)
    session.execute(update(Handoff).where(Handoff.id.in_(ids), Handoff.status == HandoffStatus.OPEN.value)
                    .values(status=HandoffStatus.CANCELLED.value, reason=reason[:500], due_at=None))
    record(session, lead_id, Ev.CANCELLED, reason=reason, handoffs=ids)
    timers = [(job, hid) for hid in ids for job in (SEND_JOB, REMIND_JOB, ESCALATE_JOB)]
    after_commit(session, lambda: cancel(svc.redis, *timers))
    return len(ids)
