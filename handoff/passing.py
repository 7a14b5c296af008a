"""A rep who can't take a lead passes it: the next matched rep gets it now, or the managers are told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.timeline import record
from handoff.defaults import ESCALATE_JOB, REMIND_JOB
from handoff.events import HandoffEvent as Ev
from handoff.ladder import _next_rep
from handoff.offers import lead_of, offer_sms
from handoff.roster_cache import roster_for
from handoff.scheduling import after_commit, cancel
from handoff.waiting import put_on_list

PASSED_REASON = "{rep} couldn't take it"


def pass_handoff(svc: Any, s: Session, h: Handoff, via: str, now: datetime) -> str | None:
    """Decline one open SMS handoff and offer the lead to the next rep in its queue.

    Returns the next rep's name, "" when nobody is left (the lead goes on the unassigned list),
    or None when the handoff was no longer open. The caller commits.
    """
    if h.mode != HandoffMode.SMS.value:
        return None
    res = s.execute(
        update(Handoff)
        .where(Handoff.id == h.id, Handoff.status == HandoffStatus.OPEN.value)
        .values(
            status=HandoffStatus.DECLINED.value, escalated_at=now, reason=PASSED_REASON.format(rep=h.rep_name)
        )
    )
    if res.rowcount != 1:
        return None
    lead = lead_of(s, h.lead_id)
    record(s, lead.id, Ev.REP_DECLINED, rep=h.rep_name, handoff=h.id, via=via)
    after_commit(s, lambda: cancel(svc.redis, (REMIND_JOB, h.id), (ESCALATE_JOB, h.id)))
    nxt, rest = _next_rep(s, roster_for(svc), lead, list((h.details or {}).get("queue", [])), now)
    if nxt is None:  # on the unassigned list: the managers are told, the next free rep gets it
        put_on_list(svc, s, lead, PASSED_REASON.format(rep=h.rep_name) + " and no other rep can take it now",
                    answers=(h.details or {}).get("answers"))
        return ""
    new = offer_sms(
        svc,
        s,
        lead,
        nxt,
        answers=(h.details or {}).get("answers", {}),
        queue=rest,
        reason=PASSED_REASON.format(rep=h.rep_name),
        try_number=h.try_number + 1,
    )
    record(
        s,
        lead.id,
        Ev.REASSIGNED,
        rep=nxt.name,
        previous_rep=h.rep_name,
        handoff=new.id,
        previous_handoff=h.id,
    )
    return nxt.name
