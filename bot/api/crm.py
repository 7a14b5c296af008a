"""What CRMs read: GET /leads (paged, filtered) and GET /reports/webhook-deliveries (the failing ones)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import and_, or_, select

from bot.api.intake import api_key_required, json_error
from bot.api.reports import parse_instant
from bot.store import deliveries
from bot.store.source_tables import DeliveryStatus, LeadSource
from bot.store.tables import Lead, LeadStatus

bp = Blueprint("crm", __name__)

PAGE_MAX, PAGE_DEFAULT = 200, 50
STATUSES = {s.value for s in LeadStatus}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() + "Z" if at else None


def _cursor(at: datetime, lead_id: str) -> str:
    """An opaque keyset cursor: created_at and id of the last lead on the page."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{lead_id}".encode()).decode().rstrip("=")


def _uncursor(raw: str) -> tuple[datetime, str]:
    """Undo _cursor; ValueError when it was not made by us."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, lead_id = text.split("|", 1)
        return datetime.fromisoformat(at), lead_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor from this API") from None


@bp.get("/leads")
@api_key_required
def list_leads():
    """Leads oldest first: ?status=&source=&since=&cursor=&limit= ; follow `next_cursor` until it is null."""
    args, bad = request.args, {}
    stmt = select(Lead).order_by(Lead.created_at, Lead.id)
    if status := args.get("status"):
        if status not in STATUSES:
            bad["status"] = f"one of {', '.join(sorted(STATUSES))}"
        stmt = stmt.where(Lead.status == status)
    if source := args.get("source"):
        # The lead's first source, or any later one that joined it (one person, many sources).
        stmt = stmt.where(or_(Lead.source == source, Lead.id.in_(
            select(LeadSource.lead_id).where(LeadSource.source == source))))
    if since := args.get("since"):
        try:
            stmt = stmt.where(Lead.created_at >= parse_instant(since).astimezone(UTC).replace(tzinfo=None))
        except (ValueError, OverflowError):  # year 1 with a positive offset overflows into year 0
            bad["since"] = f"not an ISO-8601 date or time: {since!r}"
    if cursor := args.get("cursor"):
        try:
            at, lead_id = _uncursor(cursor)
            stmt = stmt.where(or_(Lead.created_at > at, and_(Lead.created_at == at, Lead.id > lead_id)))
        except ValueError as exc:
            bad["cursor"] = str(exc)
    try:
        limit = min(max(int(args.get("limit", PAGE_DEFAULT)), 1), PAGE_MAX)
    except ValueError:
        bad["limit"] = f"a whole number from 1 to {PAGE_MAX}"
        limit = PAGE_DEFAULT
    if bad:
        return json_error(400, "bad query", bad)
    svc = current_app.extensions["leadbot"]
    with svc.sessions() as s:
        rows = list(s.scalars(stmt.limit(limit + 1)))
        page = rows[:limit]
        ids = [lead.id for lead in page]
        sources: dict[str, list[dict[str, Any]]] = {}
        if ids:
            for x in s.scalars(select(LeadSource).where(LeadSource.lead_id.in_(ids)).order_by(LeadSource.id)):
                sources.setdefault(x.lead_id, []).append(
                    {"source": x.source, "external_id": x.external_id, "campaign_id": x.campaign_id,
                     "adgroup_id": x.adgroup_id, "ad_id": x.ad_id, "form_id": x.form_id,
                     "is_test": x.is_test})
        leads = [{"id": lead.id, "status": lead.status, "status_reason": lead.status_reason,
                  "name": lead.name, "phone": lead.phone, "email": lead.email, "service": lead.service,
                  "channel": lead.channel, "source": lead.source, "created_at": _iso(lead.created_at),
                  "updated_at": _iso(lead.updated_at), "sources": sources.get(lead.id, [])} for lead in page]
    cursor = _cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return jsonify({"leads": leads, "next_cursor": cursor})


@bp.get("/reports/webhook-deliveries")
@api_key_required
def failing_deliveries():
    """Deliveries not yet answered 2xx after at least one try (?status=failed: the given-up ones)."""
    status = request.args.get("status")
    if status not in (None, DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        return json_error(400, "bad query", {"status": "pending or failed"})
    svc = current_app.extensions["leadbot"]
    with svc.sessions() as s:
        out = [{"id": d.id, "event_id": d.event_id, "event_type": d.event_type, "lead_id": d.lead_id,
                "url": d.url, "status": d.status, "attempts": d.attempts,
                "last_status_code": d.last_status_code, "last_response": d.last_response,
                "last_error": d.last_error, "created_at": _iso(d.created_at),
                "updated_at": _iso(d.updated_at), "log": d.log or []} for d in deliveries.failing(s, status)]
    return jsonify({"deliveries": out})
