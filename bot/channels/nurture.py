"""Nurture that sends: entering a drip sequence plans its steps; each step is rendered, checked against
its condition and sent once through the gate (bot.channels.touchsend)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from bot.channels import conversation, touches
from bot.flows.nurture import Sequence, load_sequence, sequence_path
from bot.runtime.services import Services
from bot.store.tables import Lead, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Touch

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


def step_content(svc: Services, lead: Lead, touch: Touch) -> tuple[str | None, str] | None:
    """(subject, body) of a due step, or None when its condition does not hold or it is gone from the file."""
    seq = sequence(svc, touch.sequence or "")
    step = next((st for st in seq.steps if st.id == touch.step), None) if seq else None
    if step is None or (step.when is not None and not step.when.holds(lead.answers or {})):
        return None
    context = {"lead": conversation.lead_fields(lead)}
    subject = step.subject.render("en", "en", context) if step.subject else None
    return subject, step.text.render("en", "en", context)
