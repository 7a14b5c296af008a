"""Tables: leads, contact attempts, the event timeline, conversations, flow versions, opt-outs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.store import clock


class Base(DeclarativeBase):
    """Declarative base for every leadbot table."""


def utcnow() -> datetime:
    """Naive UTC now: stored the same way on SQLite and PostgreSQL (moved by bot.store.clock in tests)."""
    return clock.utcnow()


def new_id() -> str:
    """A random, URL-safe lead or attempt id."""
    return uuid.uuid4().hex


class LeadStatus(str, Enum):
    """Where a lead is in its life."""

    RECEIVED = "received"  # committed, not yet handed to a worker
    QUEUED = "queued"  # a contact job is in Redis
    SCHEDULED = "scheduled"  # outside calling hours; waits for the window
    CONTACTING = "contacting"  # a call or first SMS is out
    IN_CONVERSATION = "in_conversation"
    QUALIFIED = "qualified"
    TRANSFERRING = "transferring"
    HANDED_OFF = "handed_off"
    NURTURING = "nurturing"
    DISQUALIFIED = "disqualified"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    OPTED_OUT = "opted_out"


# Statuses in which a lead may still be contacted by the dispatcher.
DISPATCHABLE = {LeadStatus.RECEIVED.value, LeadStatus.QUEUED.value, LeadStatus.SCHEDULED.value}


class Lead(Base):
    """One prospect who asked to be contacted."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # dedupe across sources by email
    service: Mapped[str | None] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(8), default="call")
    source: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    region: Mapped[str | None] = mapped_column(String(4))
    state: Mapped[str | None] = mapped_column(String(2))  # as the form gave it (calling rules)
    zip: Mapped[str | None] = mapped_column(String(10))
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.RECEIVED.value, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # When a 'scheduled' or 'queued' lead's contact job is due; cleared when a job claims the lead.
    # The sweeper re-enqueues a lead still waiting well past it whose job Redis lost.
    contact_due_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_user_agent: Mapped[str | None] = mapped_column(String(512))
    consent_page_url: Mapped[str | None] = mapped_column(String(2048))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    flow_id: Mapped[str | None] = mapped_column(String(80))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    attempts: Mapped[list[Attempt]] = relationship(back_populates="lead", order_by="Attempt.number")

    @property
    def first_name(self) -> str:
        """The first word of the name, for friendly prompts."""
        return (self.name or "").split(" ")[0]


class Attempt(Base):
    """One outbound contact (a call or a first SMS); the unit that must never happen twice."""

    __tablename__ = "attempts"
    # The sweeper looks for attempts stuck in 'placing' or 'retry' every few seconds: without this
    # index that is a scan of every attempt ever made (~8 ms per 100,000 rows on SQLite).
    __table_args__ = (UniqueConstraint("lead_id", "number"),
                      Index("ix_attempts_status_updated", "status", "updated_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    number: Mapped[int] = mapped_column(Integer, default=1)
    channel: Mapped[str] = mapped_column(String(8))
    # pending -> placing -> placed -> (ringing/in-progress/...) -> completed|failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    call_status: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    lead: Mapped[Lead] = relationship(back_populates="attempts")


class Event(Base):
    """A timestamped fact about a lead; timelines and reports are queries over these."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_lead_at", "lead_id", "at"), Index("ix_events_type_at", "type", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"))
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Conversation(Base):
    """A running flow for a lead on one channel; state is JSON so any process can continue it."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    flow_id: Mapped[str] = mapped_column(String(80))
    flow_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    outcome: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FlowVersion(Base):
    """Every flow text ever loaded, by content hash, so a conversation can pin its version."""

    __tablename__ = "flow_versions"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(80), index=True)
    source: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class IdempotencyKey(Base):
    """An Idempotency-Key whose request found an earlier lead (a duplicate): a replay after the dedupe
    window finds that lead again, rather than making a new one that is called."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OptOut(Base):
    """A number that said STOP (or pressed the opt-out key); never contacted again."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(40))
