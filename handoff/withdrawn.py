"""A prospect who opts out after a rep was given their lead: the rep is told, so nobody calls them.

The lead's own touches are blocked by the opt-out, but a rep holding the lead (texted and waiting, or
already acknowledged) would still call from their own phone. One text per handoff, sent once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.runtime.queueing import job_lost
from bot.store.handoff_tables import Handoff, HandoffStatus
from bot.store.tables import Lead, OptOut, utcnow
from bot.store.timeline import record
from handoff.defaults import OPTED_OUT_JOB
from handoff.events import HandoffEvent as Ev
from handoff.ladder import LOST_GRACE_S, TransientSendError, _already, _context, _retries_left, _text
from handoff.notify import NAME_MAX, clean, e164
from handoff.offers import SEND_RETRY
from handoff.scheduling import enqueue, enqueue_after_commit, job_id

KIND = "opted_out"
LOOKBACK = timedelta(days=30)  # a rep is told about leads handed to them this recently
# Texted and waiting, or acknowledged: a rep holds the lead.
HELD = or_(Handoff.status == HandoffStatus.ACKED.value,
           and_(Handoff.status == HandoffStatus.OPEN.value, Handoff.due_at.is_not(None)))


def opted_out_text(name: str | None, phone: str) -> str:
    """The rep's text: who opted out, and not to contact them."""
    return (f"{clean(name, NAME_MAX) or 'Your lead'} {e164(phone)} has opted out of calls and texts. "
            "Please don't contact them about this lead.")


def tell_reps(svc: Any, session: Session, phone: str) -> int:
    """Queue the text to every rep holding a lead of this number; call before the handoffs are cancelled."""
    ids = session.scalars(select(Handoff.id).join(Lead, Lead.id == Handoff.lead_id).where(
        Lead.phone == phone, HELD)).all()
    for handoff_id in ids:
        enqueue_after_commit(session, svc.queue, OPTED_OUT_JOB, handoff_id, retry=SEND_RETRY)
    return len(ids)


def tell_rep(svc: Any, handoff_id: str) -> str:
    """RQ job body: text the rep once that their lead opted out."""
    with svc.sessions() as s:
        h = s.get(Handoff, handoff_id)
        if h is None or _already(s, h, Ev.SMS_SENT, KIND):
            return "skipped"
        lead, _roster, rep = _context(svc, s, h)
        text = opted_out_text(lead.name, lead.phone)
    sent = _text(svc, h.rep_phone, text)
    with svc.sessions() as s:
        if sent.error is None:
            record(s, h.lead_id, Ev.SMS_SENT, kind=KIND, rep=rep.name, handoff=h.id, to=h.rep_phone,
                   sid=sent.ref)
        else:
            record(s, h.lead_id, Ev.SMS_FAILED, kind=KIND, rep=rep.name, handoff=h.id, error=sent.error)
        s.commit()
    if sent.transient and _retries_left() > 0:
        raise TransientSendError(f"handoff {h.id}: opted-out text to {h.rep_phone} failed; RQ will retry")
    return sent.ref or "sms-failed"


def sweep_lost(svc: Any, now: datetime | None = None) -> int:
    """Tell the reps a STOP's job never reached (Redis lost it) or an opt-out that came another way (a
    DNC import): handoffs a rep holds, of the last LOOKBACK, whose number opted out, and nobody told."""
    now = now or utcnow()
    with svc.sessions() as s:
        rows = s.scalars(select(Handoff).join(Lead, Lead.id == Handoff.lead_id)
                         .join(OptOut, OptOut.phone == Lead.phone)
                         .where(HELD, Handoff.created_at > now - LOOKBACK,
                                OptOut.at < now - timedelta(seconds=LOST_GRACE_S)).limit(200)).all()
        due = [h.id for h in rows
               if not any(_already(s, h, kind, KIND) for kind in (Ev.SMS_SENT, Ev.SMS_FAILED))]
    return sum(1 for hid in due
               if job_lost(svc.redis, job_id(OPTED_OUT_JOB, hid), now)
               and enqueue(svc.queue, OPTED_OUT_JOB, hid, retry=SEND_RETRY))
