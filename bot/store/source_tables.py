"""Tables for where leads come from (platform ids per source) and the CRM webhook deliveries going out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base, new_id, utcnow


class LeadSource(Base):
    """One submission of a lead by one source: the platform's own lead id, campaign, ad and form.

    A person who arrives from three sources is one lead with three of these rows. The unique
    (source, external_id) pair makes a platform's re-delivery of the same lead a no-op.
    """

    __tablename__ = "lead_sources"
    __table_args__ = (UniqueConstraint("source", "external_id"),
                      Index("ix_lead_sources_campaign", "campaign_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    source: Mapped[str] = mapped_column(String(80))
    external_id: Mapped[str | None] = mapped_column(String(255))
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    adgroup_id: Mapped[str | None] = mapped_column(String(64))
    ad_id: Mapped[str | None] = mapped_column(String(64))
    form_id: Mapped[str | None] = mapped_column(String(64))
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DeliveryStatus:
    """Where one webhook delivery is."""

    PENDING = "pending"  # not yet answered 2xx; RQ retries it
    DELIVERED = "delivered"
    FAILED = "failed"  # retries used up: waits for `leadbot webhooks replay`


class WebhookDelivery(Base):
    """One CRM event for one subscriber: its signed body, its attempts and the last response."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status", "status", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    lead_id: Mapped[str] = mapped_column(String(32), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_env: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the last attempts: at, code, ms, error
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
