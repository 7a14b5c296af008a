"""Tables for handoffs to salespeople."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.models import new_id, utcnow


class Handoff(Base):
    """One qualified lead offered to one salesperson, with the clock running until they acknowledge."""

    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    rep_name: Mapped[str] = mapped_column(String(120))
    rep_phone: Mapped[str] = mapped_column(String(20), index=True)
    rep_email: Mapped[str | None] = mapped_column(String(254))
    mode: Mapped[str] = mapped_column(String(16), default="sms")  # warm_transfer | sms
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    conference: Mapped[str | None] = mapped_column(String(80))
    rep_call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
