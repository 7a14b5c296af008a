"""What each live-transfer webhook does: one short transaction, then TwiML (or nothing) for Twilio."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, update

from bot.store.handoff_tables import WAITING_STATUSES, Handoff, HandoffStatus, Transfer, TransferStatus
from bot.store.tables import Lead, utcnow
from handoff import transfer
from handoff.defaults import DIALING
from handoff.events import HandoffEvent as Ev
from handoff.twiml import (
    AFTER_CALL,
    REP_PASSED,
    REP_TOO_LATE,
    goodbye,
    hold_message,
    join_conference,
    whisper,
)
from handoff.twiml import whisper_text as _whisper_text

# Rep call statuses that end the leg before anyone accepted.
UNANSWERED = {"busy", "no-answer", "failed", "canceled"}


def _adopt_sid(s: Any, h: Handoff, call_sid: str) -> None:
    """Remember the rep's CallSid even if the dial job has not stored it yet."""
    if call_sid:
        s.execute(update(Handoff).where(Handoff.id == h.id, or_(Handoff.rep_call_sid.is_(None),
                                                                Handoff.rep_call_sid == DIALING))
                  .values(rep_call_sid=call_sid))


def _whisper(s: Any, h: Handoff) -> str:
    """The whisper text for this try."""
    lead = s.get(Lead, h.lead_id)
    return _whisper_text(h.rep_name, lead.name, lead.service, h.details.get("answers", {}))


def hold(svc: Any, transfer_id: str, visit: int) -> str:
    """The prospect's hold loop; each visit also repairs a lost dial, watchdog or end-of-hold job."""
    with svc.sessions() as s:
        t = s.get(Transfer, transfer_id)
        if t is not None and t.status == TransferStatus.HOLDING.value:
            transfer.heal(svc, s, t, utcnow())
        elif t is not None and t.status == TransferStatus.FAILED.value:
            transfer.heal_failed(svc, t, utcnow())
        voice = t.voice if t else None
    again = transfer.webhook_url(svc, "hold", transfer_id, n=visit + 1)
    return str(hold_message(visit, again, voice))


def rep_answered(svc: Any, handoff_id: str, call_sid: str, answered_by: str) -> str:
    """The rep's phone was answered: voicemail passes to the next rep; a person hears the whisper."""
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None:
            return str(goodbye())
        _adopt_sid(s, h, call_sid)
        if answered_by.startswith(("machine", "fax")):
            transfer.pass_rep(svc, s, h, Ev.REP_VOICEMAIL, f"voicemail answered ({answered_by})")
            s.commit()
            return str(goodbye())
        t = transfer.transfer_of(s, h)
        if h.status != HandoffStatus.OPEN.value or t is None or t.status != TransferStatus.HOLDING.value:
            s.commit()
            return str(goodbye(REP_TOO_LATE))
        text = _whisper(s, h)
        s.commit()
    return str(whisper(text, transfer.webhook_url(svc, "keys", handoff_id)))


def rep_pressed(svc: Any, handoff_id: str, digits: str) -> str:
    """1 joins the conference, 2 passes, no key means a voicemail greeting listened; others repeat."""
    key = (digits or "").strip()[:1]
    now = utcnow()
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        t = transfer.transfer_of(s, h) if h else None
        if h is None or t is None:
            return str(goodbye(REP_TOO_LATE))
        if key == "1":
            # A repeated press from the rep who already won joins again; everyone else is too late.
            joined = h.status == HandoffStatus.ACKED.value and t.status in (TransferStatus.ACCEPTED.value,
                                                                             TransferStatus.CONNECTED.value)
            if joined or transfer.accept(svc, s, h, t, now):
                s.commit()
                return str(join_conference(t.conference, transfer.webhook_url(svc, "conference", t.id)))
            return str(goodbye(REP_TOO_LATE))
        if key == "2":
            transfer.pass_rep(svc, s, h, Ev.REP_DECLINED, "pressed 2 to pass", now)
            s.commit()
            return str(goodbye(REP_PASSED))
        if not key:
            transfer.pass_rep(svc, s, h, Ev.REP_VOICEMAIL, "no key pressed after the whisper", now)
            s.commit()
            return str(goodbye())
        if h.status != HandoffStatus.OPEN.value or t.status != TransferStatus.HOLDING.value:
            return str(goodbye(REP_TOO_LATE))
        text = _whisper(s, h)
    return str(whisper(text, transfer.webhook_url(svc, "keys", handoff_id), again=True))


def rep_status(svc: Any, handoff_id: str, status: str, answered_by: str, call_sid: str) -> None:
    """The rep's leg ended (or progressed); only an end before accepting changes anything."""
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None:
            return
        _adopt_sid(s, h, call_sid)
        if status in UNANSWERED:
            transfer.pass_rep(svc, s, h, Ev.REP_NO_ANSWER, f"rep call {status}")
        elif status == "completed" and answered_by.startswith(("machine", "fax")):
            transfer.pass_rep(svc, s, h, Ev.REP_VOICEMAIL, f"voicemail answered ({answered_by})")
        elif status == "completed":
            transfer.pass_rep(svc, s, h, Ev.REP_DECLINED, "hung up before accepting")
        s.commit()


def conference_event(svc: Any, transfer_id: str, event: str, call_sid: str) -> None:
    """Participants joining and leaving the named conference."""
    now = utcnow()
    with svc.sessions() as s:
        t = s.get(Transfer, transfer_id)
        if t is None:
            return
        prospect = call_sid == t.prospect_call_sid
        if event == "participant-join" and not prospect:
            transfer.connected(s, t, call_sid, now)
        elif event in ("participant-leave", "conference-end"):
            if t.status in WAITING_STATUSES and (prospect or event == "conference-end"):
                transfer.prospect_left(svc, s, t, now, how=event)
            elif t.status == TransferStatus.CONNECTED.value:
                transfer.ended(s, t, now)
        s.commit()


def prospect_dial_done(svc: Any, transfer_id: str, call_status: str) -> str:
    """The prospect's <Dial> is over: a hang-up while waiting is handled; anyone still on hears goodbye."""
    now = utcnow()
    with svc.sessions() as s:
        t = s.get(Transfer, transfer_id)
        if t is None:
            return str(goodbye())
        if call_status == "completed" and t.status in WAITING_STATUSES:
            transfer.prospect_left(svc, s, t, now, how="dial-action")
        elif t.status == TransferStatus.CONNECTED.value:
            transfer.ended(s, t, now)
        s.commit()
        if t.status == TransferStatus.FAILED.value and t.closing:
            return str(goodbye(t.closing, t.voice))
        return str(goodbye(AFTER_CALL, t.voice))
