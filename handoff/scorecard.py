"""Per-salesperson accountability figures, computed from the handoffs table.

Counts come from one portable GROUP BY; percentiles are taken in Python from the
acknowledgement durations because SQLite has no percentile function.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from bot.store.tables import utcnow
from handoff.shifts import as_utc


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (as PostgreSQL's percentile_cont); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _naive(at: datetime | None) -> datetime | None:
    """Naive UTC, the way timestamps are stored."""
    return None if at is None else as_utc(at).replace(tzinfo=None)


def _filtered(query: Select[Any], since: datetime | None, until: datetime | None,
              reps: Iterable[str] | None) -> Select[Any]:
    """Restrict to handoffs created in [since, until) and, optionally, to some rep phones."""
    if since is not None:
        query = query.where(Handoff.created_at >= _naive(since))
    if until is not None:
        query = query.where(Handoff.created_at < _naive(until))
    if reps is not None:
        query = query.where(Handoff.rep_phone.in_(list(reps)))
    return query


def ack_query(since: datetime | None = None, until: datetime | None = None,
              reps: Iterable[str] | None = None) -> Select[Any]:
    """Acknowledged handoffs' rep phone, offer and acknowledgement times, in [since, until)."""
    return _filtered(select(Handoff.rep_phone, Handoff.created_at, Handoff.acked_at)
                     .where(Handoff.acked_at.is_not(None)), since, until, reps)


def ack_durations(session: Session, since: datetime | None = None, until: datetime | None = None,
                  reps: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Seconds from offer to acknowledgement, per rep phone."""
    query = ack_query(since, until, reps)
    out: dict[str, list[float]] = defaultdict(list)
    for phone, created, acked in session.execute(query):
        out[phone].append(max((acked - created).total_seconds(), 0.0))
    return dict(out)


def median_ack_seconds(session: Session, since: datetime | None = None) -> dict[str, float]:
    """Median acknowledgement seconds per rep phone: the ``ack_seconds`` input of matching."""
    return {phone: percentile(d, 0.5) for phone, d in ack_durations(session, since).items()}  # type: ignore[misc]


def rep_scorecard(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                  now: datetime | None = None, reps: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """JSON-able figures per rep, busiest first.

    ``within_sla``: acknowledged by the deadline. ``late``: acknowledged after it.
    ``missed``: deadline passed with no acknowledgement. ``pct_within_sla`` divides
    ``within_sla`` by every handoff whose outcome is known (within + late + missed).
    """
    now_naive = _naive(now) or utcnow()
    reps = list(reps) if reps is not None else None
    acked, due = Handoff.acked_at.is_not(None), Handoff.due_at.is_not(None)
    transfer = Handoff.mode == HandoffMode.WARM_TRANSFER.value

    def count_if(*conds: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*conds), 1), else_=0)), 0)

    query = _filtered(select(
        Handoff.rep_phone, func.max(Handoff.rep_name), func.count(),
        count_if(acked),
        count_if(acked, due, Handoff.acked_at <= Handoff.due_at),
        count_if(acked, due, Handoff.acked_at > Handoff.due_at),
        count_if(Handoff.acked_at.is_(None), due, Handoff.due_at < now_naive),
        count_if(Handoff.status == HandoffStatus.OPEN.value),
        count_if(transfer),
        count_if(transfer, acked),
    ).group_by(Handoff.rep_phone), since, until, reps)
    durations = ack_durations(session, since, until, reps)
    cards = []
    for row in session.execute(query):
        phone, name, total, n_acked, within, late, missed, still_open, transfers, accepted = row
        waits = durations.get(phone, [])
        decided = within + late + missed
        cards.append({
            "rep_phone": phone, "rep_name": name, "handoffs": int(total), "acknowledged": int(n_acked),
            "median_ack_seconds": _round(percentile(waits, 0.5)),
            "p90_ack_seconds": _round(percentile(waits, 0.9)),
            "within_sla": int(within), "late": int(late), "missed": int(missed),
            "pct_within_sla": round(100.0 * within / decided, 1) if decided else None,
            "open": int(still_open), "transfers": int(transfers), "transfers_accepted": int(accepted),
        })
    cards.sort(key=lambda c: (-c["handoffs"], c["rep_name"]))
    return cards


def _round(value: float | None) -> float | None:
    """Seconds to one decimal for display."""
    return None if value is None else round(value, 1)
