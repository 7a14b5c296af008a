"""Touches more than a day late are not sent: they end, and the lead's chase or drip ends with them.

A touch whose job failed for good waits in RQ's failed registry (the console's health page) for a
person; when that job expires, seven days on, the touch looked lost and the sweeper sent it then: a
"we got cut off" call a week late. Redis and the workers down for days end the same way. Past
`touches.MAX_LATE` a planned touch is closed instead, with the reason, and a chase or drip with
nothing left to send ends as it would have: the managers get the "Unreachable lead" email.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.channels import cadence, nurture, touches
from bot.runtime import queueing
from bot.runtime.services import Services
from bot.store.tables import Lead, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Touch, TouchStatus


def sweep_stale(svc: Services) -> int:
    """Close planned touches due more than MAX_LATE ago whose job is not waiting or running."""
    now = utcnow()
    ended = 0
    with svc.sessions() as s:
        stale = s.scalars(select(Touch).where(Touch.status == TouchStatus.PLANNED,
                                              Touch.due_at < now - touches.MAX_LATE).limit(200)).all()
        for t in stale:
            if queueing.job_state(svc.redis, f"touch-{t.id}", now) in touches.WAITING_OR_RUNNING:
                continue
            hours = int((now - t.due_at).total_seconds() // 3600)
            t.status = TouchStatus.CANCELLED
            t.reason = f"not sent: due {hours} h ago, its job failed or was lost"
            record(s, t.lead_id, "touch_cancelled", kind=t.kind, channel=t.channel, reason=t.reason,
                   touch=t.id)
            s.flush()
            lead = s.get(Lead, t.lead_id)
            if lead is not None:
                nurture.step_ended(svc, s, lead, t)
                chase_left = any(p.kind in cadence.CHASE_KINDS for p in cadence.pending(s, lead.id))
                chase_over = t.kind in cadence.CHASE_KINDS and not chase_left
                if chase_over and lead.status in cadence.CHASED:
                    cadence.finished(svc, s, lead, cadence.cadence_for(svc, lead), last_email=False)
            ended += 1
        s.commit()
    return ended
