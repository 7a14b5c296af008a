"""Tables for reaching a lead over time: every planned touch (retry, text, nurture step) and the
per-lead cadence state (which channels still work, how many calls were made)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, exists,
                        select)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.store.tables import Attempt, Base, new_id, utcnow


class TouchStatus:
    """A touch's life: planned -> sending -> sent, or cancelled / blocked / failed."""

    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    FAILED = "failed"
    DONE = "done"  # a touch that sends nothing (the end of a quiet text conversation) ran


class Touch(Base):
    """One scheduled contact with a lead; `key` makes planning it twice a no-op."""

    __tablename__ = "touches"
    __table_args__ = (UniqueConstraint("lead_id", "key"), Index("ix_touches_status_due", "status", "due_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # retry | text | voicemail_text | callback | nurture | email | nudge | quiet_end
    channel: Mapped[str] = mapped_column(String(8))  # call | sms | email
    due_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(12), default=TouchStatus.PLANNED)
    reason: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)  # the text to send (templates rendered at planning)
    sequence: Mapped[str | None] = mapped_column(String(80))  # nurture sequence
    step: Mapped[str | None] = mapped_column(String(80))  # nurture step id or cadence index
    attempt_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Reach(Base):
    """How a lead's unanswered-call cadence stands, and which channels proved unusable."""

    __tablename__ = "reach"

    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, default=1)  # a new submission starts round 2, ...
    cadence: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)  # the first unanswered call's end
    calls: Mapped[int] = mapped_column(Integer, default=0)  # unanswered calls this round
    next_index: Mapped[int] = mapped_column(Integer, default=0)  # next cadence touch to plan
    failed_in_row: Mapped[int] = mapped_column(Integer, default=0)
    texted: Mapped[bool] = mapped_column(Boolean, default=False)  # a "we just called" text went out
    no_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    no_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    nurture: Mapped[str | None] = mapped_column(String(80))  # the running nurture sequence
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


def _iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat() + "Z"


def touch_view(s: Session, lead_id: str) -> list[dict[str, Any]]:
    """The lead's touches for GET /leads/<id>: planned, sent, cancelled and blocked, with reasons."""
    rows = s.scalars(select(Touch).where(Touch.lead_id == lead_id).order_by(Touch.due_at, Touch.created_at))
    return [
        {
            "kind": t.kind,
            "channel": t.channel,
            "due": _iso(t.due_at),
            "status": t.status,
            "reason": t.reason,
            **({"sequence": t.sequence, "step": t.step} if t.sequence else {}),
        }
        for t in rows
    ]


def nurture_view(s: Session, lead_id: str) -> dict[str, Any] | None:
    """The lead's nurture sequence: the steps sent and the next one due (None when it never entered one)."""
    rows = s.scalars(
        select(Touch).where(Touch.lead_id == lead_id, Touch.kind == "nurture").order_by(Touch.due_at)
    ).all()
    if not rows:
        return None
    nxt = next((t for t in rows if t.status == TouchStatus.PLANNED), None)
    ended = next((t for t in rows if t.status in (TouchStatus.CANCELLED, TouchStatus.BLOCKED)), None)
    return {
        "sequence": rows[-1].sequence,
        "sent": [
            {"step": t.step, "channel": t.channel, "at": _iso(t.updated_at)}
            for t in rows
            if t.status == TouchStatus.SENT
        ],
        "next": {"step": nxt.step, "channel": nxt.channel, "due": _iso(nxt.due_at)} if nxt else None,
        "stopped": ended.reason if ended else None,
    }


def contact_attempt() -> ColumnElement[bool]:
    """A WHERE clause: the attempt is the contact job's own, not a touch's. A touch retries its own
    attempt (bot.channels.touchsend); the contact job and its sweeper taking it too dialled twice."""
    return ~exists().where(Touch.attempt_id == Attempt.id)


def callback_planned(s: Session, lead_id: str) -> bool:
    """True when the lead asked for a call by text and that call is still planned (replies.callback)."""
    return s.scalar(select(Touch.id).where(Touch.lead_id == lead_id, Touch.kind == "callback",
                                           Touch.status == TouchStatus.PLANNED).limit(1)) is not None
