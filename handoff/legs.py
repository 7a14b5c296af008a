"""The live transfer's Twilio REST calls, as RQ jobs: dial a rep, give up on one, hang up, end the hold."""

from __future__ import annotations

import logging
from typing import Any

import requests
from sqlalchemy import update
from twilio.base.exceptions import TwilioRestException

from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus, Transfer, TransferStatus
from bot.store.tables import utcnow
from bot.store.timeline import record
from handoff import transfer
from handoff.defaults import DEFAULT_RING_SECONDS, DIALING, WATCH_JOB, WATCHDOG_GRACE_SECONDS
from handoff.events import HandoffEvent as Ev
from handoff.scheduling import enqueue

log = logging.getLogger(__name__)

REP_CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
REST_ERRORS = (TwilioRestException, requests.RequestException)


def dial(svc: Any, handoff_id: str) -> str:
    """Call the rep with the whisper webhook; a failed request passes to the next rep at once."""
    with svc.sessions() as s:
        claimed = s.execute(update(Handoff).where(
            Handoff.id == handoff_id, Handoff.status == HandoffStatus.OPEN.value,
            Handoff.mode == HandoffMode.WARM_TRANSFER.value, Handoff.rep_call_sid.is_(None),
        ).values(rep_call_sid=DIALING))
        h = s.get(Handoff, handoff_id)
        t = transfer.transfer_of(s, h) if h else None
        if claimed.rowcount != 1 or t is None or t.status != TransferStatus.HOLDING.value:
            s.rollback()
            return "skipped"
        s.commit()
    started = utcnow()
    try:
        call = svc.twilio.calls.create(
            to=h.rep_phone, from_=svc.settings.caller_id, method="POST",
            url=transfer.webhook_url(svc, "whisper", h.id),
            status_callback=transfer.webhook_url(svc, "rep-status", h.id), status_callback_method="POST",
            status_callback_event=REP_CALL_EVENTS, machine_detection="Enable", timeout=DEFAULT_RING_SECONDS,
        )
    except REST_ERRORS as exc:
        with svc.sessions() as s:
            h = s.get(Handoff, handoff_id)
            transfer.pass_rep(svc, s, h, Ev.REP_DIAL_FAILED, f"dial failed: {exc}"[:300])
            s.commit()
        return "failed"
    with svc.sessions() as s:
        s.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.rep_call_sid == DIALING)
                  .values(rep_call_sid=call.sid))
        h = s.get(Handoff, handoff_id)
        record(s, h.lead_id, Ev.REP_DIALING, at=started, rep=h.rep_name, handoff=h.id, attempt=h.try_number,
               sid=call.sid)
        wanted = h.status in (HandoffStatus.OPEN.value, HandoffStatus.ACKED.value)
        s.commit()
    if not wanted:  # the prospect hung up while Twilio was placing this call
        _hang_up(svc, h, call.sid)
        return "cancelled"
    enqueue(svc.queue, WATCH_JOB, handoff_id, delay=DEFAULT_RING_SECONDS + WATCHDOG_GRACE_SECONDS)
    return call.sid


def watch(svc: Any, handoff_id: str) -> str:
    """No verdict from the rep's leg in time (a lost callback, a rep who never presses): move on."""
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or h.status != HandoffStatus.OPEN.value:
            return "skipped"
        sid = h.rep_call_sid
        passed = transfer.pass_rep(svc, s, h, Ev.REP_NO_ANSWER,
                                   f"no answer within {DEFAULT_RING_SECONDS + WATCHDOG_GRACE_SECONDS}s",
                                   watchdog=True)
        s.commit()
    if passed and sid and sid != DIALING:
        _hang_up(svc, h, sid)
    return "passed" if passed else "skipped"


def hang_up(svc: Any, handoff_id: str) -> str:
    """End a rep's leg that is no longer wanted (the dial job does it if the SID is not known yet)."""
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
    if h is None or not h.rep_call_sid or h.rep_call_sid == DIALING:
        return "skipped"
    return "done" if _hang_up(svc, h, h.rep_call_sid) else "failed"


def _hang_up(svc: Any, h: Handoff, sid: str) -> bool:
    """`completed` ends a call whether it is still ringing or already answered."""
    try:
        svc.twilio.calls(sid).update(status="completed")
    except REST_ERRORS as exc:  # most often the leg already ended on its own
        log.info("could not end rep leg %s for handoff %s: %s", sid, h.id, exc)
        return False
    with svc.sessions() as s:
        record(s, h.lead_id, Ev.REP_LEG_CANCELLED, rep=h.rep_name, handoff=h.id, sid=sid)
        s.commit()
    return True


def end_hold(svc: Any, transfer_id: str) -> str:
    """Nobody accepted: take the prospect off hold; the ``after`` webhook tells them when to expect a call."""
    with svc.sessions() as s:
        t = s.get(Transfer, transfer_id)
    if t is None or t.status != TransferStatus.FAILED.value:
        return "skipped"
    try:
        svc.twilio.calls(t.prospect_call_sid).update(url=transfer.webhook_url(svc, "after", t.id),
                                                     method="POST")
    except REST_ERRORS as exc:  # e.g. the prospect hung up a moment earlier; the SMS handoff stands
        with svc.sessions() as s:
            record(s, t.lead_id, Ev.PROSPECT_TOLD, transfer=t.id, delivered=False, error=str(exc)[:300])
            s.commit()
        return "failed"
    with svc.sessions() as s:
        record(s, t.lead_id, Ev.PROSPECT_TOLD, transfer=t.id, delivered=True, said=t.closing)
        s.commit()
    return "told"
