"""Reports as JSON (same Bearer keys as intake): per-rep accountability, and the unassigned leads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from bot.api.intake import api_key_required, json_error
from handoff.roster import HandoffError
from handoff.roster_cache import roster_for
from handoff.scorecard import rep_scorecard
from handoff.waiting import unassigned_leads

bp = Blueprint("reports", __name__, url_prefix="/reports")

EMPTY_CARD = {"handoffs": 0, "acknowledged": 0, "median_ack_seconds": None, "p90_ack_seconds": None,
              "within_sla": 0, "late": 0, "missed": 0, "pct_within_sla": None, "open": 0, "transfers": 0,
              "transfers_accepted": 0}


def parse_instant(value: str) -> datetime:
    """ISO-8601 date or date-time; naive means UTC. ValueError otherwise, also when it is out of range.

    The result is in UTC: a time at the edge of the calendar (0001-01-01T00:00+01:00) does not
    exist there, and converting it later, in the query, was an OverflowError (a 500).
    """
    at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    try:
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("out of range") from None


@bp.get("/reps")
@api_key_required
def reps():
    """Handoffs, median/p90 time to acknowledge, % within SLA, missed and accepted transfers, per rep.

    Query: ``since`` and ``until`` (ISO-8601) bound when handoffs were offered.
    Every rep on the roster appears, with zeros when they had no handoffs.
    """
    window: dict[str, datetime | None] = {}
    bad: dict[str, str] = {}
    for key in ("since", "until"):
        raw = request.args.get(key)
        try:
            window[key] = parse_instant(raw) if raw else None
        except ValueError:
            bad[key] = f"not an ISO-8601 date or time in range: {raw!r}"
    if bad:
        return json_error(422, "bad report window", bad)
    svc = current_app.extensions["leadbot"]
    with svc.sessions() as s:
        cards = rep_scorecard(s, since=window["since"], until=window["until"])
    seen = {c["rep_phone"] for c in cards}
    roster_note: dict[str, Any] = {}
    try:
        for rep in roster_for(svc).salespeople:
            if rep.key not in seen:
                cards.append({"rep_phone": rep.key, "rep_name": rep.name, **EMPTY_CARD})
    except HandoffError as exc:  # the figures still stand without the roster's idle reps
        roster_note = {"roster_error": str(exc)}
    return jsonify({"reps": cards, "since": _iso(window["since"]), "until": _iso(window["until"]),
                    **roster_note})


@bp.get("/unassigned")
@api_key_required
def unassigned():
    """Qualified leads nobody could take yet (oldest first), each with why; they go to the next free rep."""
    svc = current_app.extensions["leadbot"]
    with svc.sessions() as s:
        leads = unassigned_leads(s)
    return jsonify({"leads": leads, "count": len(leads)})


def _iso(at: datetime | None) -> str | None:
    """UTC ISO-8601 with Z, or None."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z" if at else None
