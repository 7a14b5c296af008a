"""The health page's failing CRM deliveries: still retrying or given up, with a Retry button for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for

from bot.runtime import crm
from bot.store import deliveries
from console.auth import audit, requires, svc

bp = Blueprint("deliveries", __name__)
SHOWN = 50


def failing(s_: Any) -> list[dict[str, Any]]:
    """The newest failing deliveries, each with when RQ tries it next (None once it has given up)."""
    with s_.sessions() as s:
        rows = [
            {"id": d.id, "url": d.url, "event": d.event_type, "lead_id": d.lead_id, "status": d.status,
             "attempts": d.attempts, "updated_at": d.updated_at,
             "error": d.last_error or (f"HTTP {d.last_status_code}: {(d.last_response or '')[:200]}"
                                       if d.last_status_code else "")}
            for d in deliveries.failing(s, limit=SHOWN)
        ]
    for row in rows:
        row["next_retry"] = crm.next_retry(s_, row["id"]) if row["status"] == "pending" else None
    return rows


@bp.post("/health/deliveries/<delivery_id>/retry")
@requires("admin")
def retry(delivery_id: str):
    """Send one failing delivery again now (with fresh back-off retries after it)."""
    if not crm.retry_delivery(svc(), delivery_id):
        flash(f"Delivery {delivery_id} is unknown or already delivered.", "error")
        return redirect(url_for("console.health.health"))
    audit("crm_delivery_retried", delivery_id)
    flash(f"Delivery {delivery_id} is queued to be sent again.", "info")
    return redirect(url_for("console.health.health"))
