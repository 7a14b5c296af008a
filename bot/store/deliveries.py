"""CRM webhook deliveries as staff read them: the ones not yet answered 2xx after at least one try."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.source_tables import DeliveryStatus, WebhookDelivery


def failing(session: Session, status: str | None = None, limit: int = 500) -> list[WebhookDelivery]:
    """Newest first: still retrying (pending) and given up (failed), or one of the two."""
    stmt = (select(WebhookDelivery).where(WebhookDelivery.status != DeliveryStatus.DELIVERED,
                                          WebhookDelivery.attempts > 0)
            .order_by(WebhookDelivery.updated_at.desc()).limit(limit))
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return list(session.scalars(stmt))
