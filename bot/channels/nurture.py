"""Nurture that sends: entering a drip sequence plans its steps; each step is rendered, checked against
its condition and sent once through the gate (bot.channels.touchsend)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.channels import conversation, touches
from bot.flows.nurture import Sequence, load_sequence, sequence_path
from bot.runtime.services import Services
from bot.store.tables import Lead, LeadStatus, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Touch, TouchStatus
from handoff.defaults import UNREACHABLE_JOB
from handoff.scheduling import enqueue_after_commit
from handoff.waiting import ALERT_RETRY

log = logging.getLogger(__name__)


def sequence(svc: Services, sequence_id: str) -> Sequence | None:
    """The sequence file as it is now (a broken or missing file is logged, and yields None)."""
    path = sequence_path(svc.settings.flows_dir, sequence_id)
    found, errors = load_sequence(path)
    if errors:
        log.error("nurture sequence %s unusable: %s", sequence_id, "; ".join(map(str, errors[:5])))
    return found


def enter(svc: Services, s: Session, lead: Lead, sequence_id: str) -> datetime | None:
    """Plan every step of the sequence from now; returns when the first is due (None: nothing to send)."""
    seq = sequence(svc, sequence_id)
    if seq is None:
        record(s, lead.id, "nurture_unavailable", sequence=sequence_id)
        return None
    reach = touches.reach(s, lead.id)
    reach.nurture = sequence_id
    now = utcnow()
    for step in seq.steps:
        touches.plan(
            svc,
            s,
            lead.id,
            f"r{reach.round}:nurture:{sequence_id}:{step.id}",
            "nurture",
            step.channel,
            now + step.after,
            sequence=sequence_id,
            step=step.id,
        )
    return now + seq.steps[0].after if seq.steps else None


def after_step(svc: Services, s: Session, lead: Lead, touch: Touch) -> None:
    """A step went out or was skipped: with none left and no reply, the drip is over and the managers hear."""
    left = s.scalar(select(func.count()).where(Touch.lead_id == lead.id, Touch.kind == "nurture",
                                               Touch.status == TouchStatus.PLANNED, Touch.id != touch.id))
    if left or lead.status != LeadStatus.NURTURING.value:
        return
    sent = s.scalar(select(func.count()).where(Touch.lead_id == lead.id, Touch.kind == "nurture",
                                               Touch.status == TouchStatus.SENT))
    record(s, lead.id, "nurture_finished", sequence=touch.sequence, sent=sent)
    lead.status_reason = f"the drip '{touch.sequence}' finished ({sent} sent) with no reply"
    enqueue_after_commit(s, svc.queue, UNREACHABLE_JOB, lead.id, retry=ALERT_RETRY)


def step_ended(svc: Services, s: Session, lead: Lead, touch: Touch) -> None:
    """A nurture step that ends unsent (no usable channel, blocked, refused by Twilio, its condition
    unmet) still counts: when it was the last, the drip is over and the managers hear. Before, a
    call lead with no email whose drip ended on an email step stayed 'nurturing' for good."""
    if touch.kind == "nurture":
        after_step(svc, s, lead, touch)


def step_content(svc: Services, lead: Lead, touch: Touch) -> tuple[str | None, str] | None:
    """(subject, body) of a due step, or None when its condition does not hold or it is gone from the file."""
    seq = sequence(svc, touch.sequence or "")
    step = next((st for st in seq.steps if st.id == touch.step), None) if seq else None
    if step is None or (step.when is not None and not step.when.holds(lead.answers or {})):
        return None
    context = {"lead": conversation.lead_fields(lead)}
    subject = step.subject.render("en", "en", context) if step.subject else None
    return subject, step.text.render("en", "en", context)
