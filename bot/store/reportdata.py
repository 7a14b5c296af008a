"""Report queries over the event timeline: speed-to-lead durations and the funnel per source and service."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from bot.store.tables import Event, Lead

# Speed-to-lead milestones: the first event of any of these types, measured from the form.
MILESTONES: dict[str, tuple[str, ...]] = {
    "first dial": ("dialing", "sms_sent"),
    "first conversation": ("answered", "reply"),
    "handoff": ("handoff_matched",),
    "rep acknowledged": ("handoff_acked", "transfer_accepted"),
}
# The funnel's stages, in order, and the events that put a lead in each.
FUNNEL: dict[str, tuple[str, ...]] = {
    "contacted": ("dialing", "sms_sent"),
    "qualified": ("qualified",),
    "handed off": ("handoff_matched",),
    "acknowledged": ("handoff_acked", "transfer_accepted"),
    "nurtured": ("nurture",),
    "disqualified": ("disqualified",),
}
# Milestones count when reached within this long after the range ends: it bounds the index scan of
# events by time (without it, a report on one day last month reads every event since).
LATE_MILESTONES = timedelta(days=2)


def speed_to_lead(session: Session, since: datetime, until: datetime) -> dict[str, list[float]]:
    """Seconds from submission to each milestone, for leads submitted in [since, until)."""
    types = sorted({t for ts in MILESTONES.values() for t in ts})
    firsts: dict[tuple[str, str], float] = {}
    rows = session.execute(
        select(Event.lead_id, Event.type, Lead.created_at, func.min(Event.at))
        .join(Lead, Lead.id == Event.lead_id)
        .where(
            Lead.created_at >= since,
            Lead.created_at < until,
            Event.type.in_(types),
            Event.at >= since,
            Event.at < until + LATE_MILESTONES,
        )
        .group_by(Event.lead_id, Event.type, Lead.created_at)
    )
    for lead_id, type_, created, first in rows:
        for name, members in MILESTONES.items():
            if type_ in members:
                seconds = max((first - created).total_seconds(), 0.0)
                key = (name, lead_id)
                firsts[key] = min(firsts.get(key, seconds), seconds)
    out: dict[str, list[float]] = {name: [] for name in MILESTONES}
    for (name, _lead), seconds in firsts.items():
        out[name].append(seconds)
    return out


def funnel(session: Session, since: datetime, until: datetime) -> dict[str, dict[str, dict[str, int]]]:
    """Lead counts per stage, by source and by service: {"source": {value: {stage: n}}, "service": ...}."""
    out: dict[str, dict[str, dict[str, int]]] = {
        "source": defaultdict(lambda: defaultdict(int)),
        "service": defaultdict(lambda: defaultdict(int)),
    }
    in_range = (Lead.created_at >= since, Lead.created_at < until)
    for source, service, n in session.execute(
        select(Lead.source, Lead.service, func.count()).where(*in_range).group_by(Lead.source, Lead.service)
    ):
        out["source"][source or "(none)"]["submitted"] += n
        out["service"][service or "(none)"]["submitted"] += n
    types = sorted({t for ts in FUNNEL.values() for t in ts})
    # Counted in SQL, by stage: a lead with both a dial and a text counts once as contacted.
    stage = case(*((Event.type.in_(ts), name) for name, ts in FUNNEL.items()), else_="")
    rows = session.execute(
        select(Lead.source, Lead.service, stage, func.count(distinct(Event.lead_id)))
        .join(Lead, Lead.id == Event.lead_id)
        .where(*in_range, Event.type.in_(types), Event.at >= since, Event.at < until + LATE_MILESTONES)
        .group_by(Lead.source, Lead.service, stage)
    )
    for source, service, name, n in rows:
        out["source"][source or "(none)"][name] += n
        out["service"][service or "(none)"][name] += n
    return {k: {v: dict(stages) for v, stages in groups.items()} for k, groups in out.items()}


def lead_count(session: Session, since: datetime, until: datetime) -> int:
    """Leads submitted in [since, until)."""
    return int(
        session.scalar(
            select(func.count(distinct(Lead.id))).where(Lead.created_at >= since, Lead.created_at < until)
        )
        or 0
    )


def summary(values: list[float]) -> dict[str, Any]:
    """n, p50 and p90 of some durations."""
    from statistics import quantiles

    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p90": None}
    if len(ordered) == 1:
        return {"n": 1, "p50": ordered[0], "p90": ordered[0]}
    cuts = quantiles(ordered, n=10, method="inclusive")
    return {"n": len(ordered), "p50": round(cuts[4], 1), "p90": round(cuts[8], 1)}
