"""Tables for handoffs to salespeople, live transfers, and mail kept when no SMTP server is configured."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base, new_id, utcnow


class HandoffStatus(str, Enum):
    """Where one offer of a lead to one salesperson stands."""

    OPEN = "open"  # offered; the SLA clock is running until the rep acknowledges
    ACKED = "acked"  # rep replied 1, or accepted the warm transfer
    MISSED = "missed"  # SLA passed without an acknowledgement; managers were told
    REASSIGNED = "reassigned"  # taken away after a miss and offered to someone else
    DECLINED = "declined"  # rep did not answer or refused the warm transfer leg
    CANCELLED = "cancelled"  # lead withdrew (opt-out, duplicate) before anyone acknowledged


class HandoffMode(str, Enum):
    """How the lead reached the rep."""

    WARM_TRANSFER = "warm_transfer"
    SMS = "sms"


# Statuses that still hold one of the rep's capacity slots.
OPEN_STATUSES = (HandoffStatus.OPEN.value,)


class Handoff(Base):
    """One qualified lead offered to one salesperson, with the clock running until they acknowledge."""

    __tablename__ = "handoffs"
    # The escalation sweep asks "which open handoffs are past due" on every tick.
    # The console's rep filter reads a rep's newest handoffs.
    __table_args__ = (Index("ix_handoffs_status_due", "status", "due_at"),
                      Index("ix_handoffs_rep_created", "rep_phone", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    rep_name: Mapped[str] = mapped_column(String(120))
    rep_phone: Mapped[str] = mapped_column(String(20), index=True)
    rep_email: Mapped[str | None] = mapped_column(String(254))
    mode: Mapped[str] = mapped_column(String(16), default=HandoffMode.SMS.value)
    status: Mapped[str] = mapped_column(String(20), default=HandoffStatus.OPEN.value, index=True)
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    # Indexed: every warm-transfer webhook finds the offers of its conference by name.
    conference: Mapped[str | None] = mapped_column(String(80), index=True)
    rep_call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Indexed: every match reads the last ACK_HISTORY_DAYS of handoffs, and reports take a date range.
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Naive UTC, like every other timestamp; null means "no SLA" (e.g. a scheduled next-shift handoff).
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set once each, so the reminder and escalation jobs stay idempotent under retries.
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)


class MailOutbox(Base):
    """A message that would have gone out over SMTP; the simulator and console read it from here."""

    __tablename__ = "mail_outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # No foreign key: mail about a lead must survive even if the lead row is purged.
    lead_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str | None] = mapped_column(String(40))
    mail_from: Mapped[str] = mapped_column(String(254))
    to_addrs: Mapped[str] = mapped_column(Text)
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class TransferStatus(str, Enum):
    """Where one live transfer stands; it only moves forward (conditional UPDATEs guard each step)."""

    HOLDING = "holding"  # prospect on hold in the conference while reps are dialled one by one
    ACCEPTED = "accepted"  # a rep pressed 1 and is joining
    CONNECTED = "connected"  # the rep is in the conference with the prospect
    ENDED = "ended"  # the conversation is over
    ABANDONED = "abandoned"  # the prospect hung up before a rep joined; the lead went to SMS
    FAILED = "failed"  # nobody accepted in time; the prospect was told and the lead went to SMS


# A transfer in these states still has the prospect waiting for a rep.
WAITING_STATUSES = (TransferStatus.HOLDING.value, TransferStatus.ACCEPTED.value)


class Transfer(Base):
    """One live call parked in a named conference while reps are offered it in turn."""

    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    conference: Mapped[str] = mapped_column(String(80), unique=True)
    prospect_call_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=TransferStatus.HOLDING.value, index=True)
    # Rep phones in the order matching ranked them; `tries` of them have been dialled so far.
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
    tries: Mapped[int] = mapped_column(Integer, default=1)
    max_tries: Mapped[int] = mapped_column(Integer, default=3)
    voice: Mapped[str | None] = mapped_column(String(40))  # the flow's voice, so hold messages sound the same
    closing: Mapped[str | None] = mapped_column(Text)  # what the prospect is told when nobody accepts
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    connected_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WaitingLead(Base):
    """A qualified lead nobody could take: on the unassigned list until a rep can be offered it."""

    __tablename__ = "waiting_leads"
    # The drain reads the unassigned ones oldest first on every sweep.
    __table_args__ = (Index("ix_waiting_leads_assigned_since", "assigned_at", "since"),)

    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)  # why nobody could take it, as the managers were told
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # answers, matching's why
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set once, by the conditional UPDATE that offers the lead (or closes it: the lead withdrew).
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    assigned_to: Mapped[str | None] = mapped_column(String(120))
