"""Reports over a date range: speed-to-lead histograms, the funnel by source and service, reps, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from bot.store import reportdata
from console import charts
from console.auth import requires, svc
from handoff.roster import HandoffError
from handoff.roster_cache import roster_for
from handoff.scorecard import rep_scorecard

bp = Blueprint("reports", __name__)
DEFAULT_DAYS = 7
STAGES = ["submitted", *reportdata.FUNNEL]
IDLE_CARD = {
    "handoffs": 0,
    "acknowledged": 0,
    "median_ack_seconds": None,
    "p90_ack_seconds": None,
    "within_sla": 0,
    "late": 0,
    "missed": 0,
    "pct_within_sla": None,
}
DIGEST_VERSION = 1
TODAY_TTL_S = 15
PAST_TTL_S = 600
MAX_DAYS = 366
TABLES = ("speed", "funnel_source", "funnel_service", "reps")


def date_range() -> tuple[date, date]:
    """The inclusive [from, to] dates of the query string (default: the last week)."""
    today = datetime.now(UTC).date()
    try:
        start = date.fromisoformat(request.args.get("from") or str(today - timedelta(days=DEFAULT_DAYS - 1)))
        end = date.fromisoformat(request.args.get("to") or str(today))
    except ValueError:
        abort(400, "from and to must be dates like 2026-01-31")
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        abort(400, f"pick at most {MAX_DAYS} days")
    return start, end


def day_digest(day: date) -> dict[str, Any]:
    """One day's speed-to-lead counts (to 0.1 s) and funnel, kept in Redis for a while.

    A report over a week of busy days scans a few hundred thousand events (~0.8 s at 100,000 leads a
    month); days are cached apart so each is scanned once per TTL. Today is re-read every
    TODAY_TTL_S; earlier days every PAST_TTL_S, which also picks up a late acknowledgement.
    """
    key = f"console:report-day:{DIGEST_VERSION}:{day.isoformat()}"
    cached = svc().redis.get(key)
    if cached:
        return json.loads(cached)
    since = datetime.combine(day, datetime.min.time())
    with svc().sessions() as s:
        speed = reportdata.speed_to_lead(s, since, since + timedelta(days=1))
        groups = reportdata.funnel(s, since, since + timedelta(days=1))
    digest = {
        "speed": {m: Counter(f"{v:.1f}" for v in values) for m, values in speed.items()},
        "funnel": groups,
    }
    today = datetime.now(UTC).date()
    svc().redis.set(key, json.dumps(digest), ex=TODAY_TTL_S if day >= today else PAST_TTL_S)
    return digest


def build(start: date, end: date) -> dict[str, Any]:
    """Every table of the report for [start, end]; the whole report is kept TODAY_TTL_S in Redis."""
    key = f"console:report:{DIGEST_VERSION}:{start.isoformat()}:{end.isoformat()}"
    cached = svc().redis.get(key)
    if cached:
        return json.loads(cached)
    data = _build(start, end)
    svc().redis.set(key, json.dumps(data), ex=TODAY_TTL_S)
    return data


def _build(start: date, end: date) -> dict[str, Any]:
    since = datetime.combine(start, datetime.min.time())
    until = datetime.combine(end + timedelta(days=1), datetime.min.time())
    speed: dict[str, list[float]] = {m: [] for m in reportdata.MILESTONES}
    groups: dict[str, dict[str, dict[str, int]]] = {"source": {}, "service": {}}
    day = start
    while day <= end:
        digest = day_digest(day)
        for m, counts in digest["speed"].items():
            for value, n in counts.items():
                speed[m].extend([float(value)] * n)
        for kind, by_name in digest["funnel"].items():
            for name, stages in by_name.items():
                mine = groups[kind].setdefault(name, {})
                for stage, n in stages.items():
                    mine[stage] = mine.get(stage, 0) + n
        day += timedelta(days=1)
    with svc().sessions() as s:
        cards = rep_scorecard(s, since=since, until=until)
    try:
        seen = {c["rep_phone"] for c in cards}
        cards += [
            {**IDLE_CARD, "rep_phone": r.key, "rep_name": r.name}
            for r in roster_for(svc()).salespeople
            if r.key not in seen
        ]
    except HandoffError:
        pass  # the figures stand without the roster's idle reps
    # Keep the histogram counts, not every duration: the cached report stays small and quick to read.
    speed_rows = [{"milestone": name, **reportdata.summary(values), "bins": charts.histogram(values)}
                  for name, values in speed.items()]
    totals = {stage: sum(g.get(stage, 0) for g in groups["source"].values()) for stage in STAGES}
    return {"speed_rows": speed_rows, "groups": groups, "totals": totals, "cards": cards}


@bp.get("/reports")
@requires("read")
def reports():
    """The report page: tables with the numbers, and the same numbers as JSON for its charts."""
    start, end = date_range()
    data = build(start, end)
    return render_template(
        "console/reports.html",
        start=start,
        end=end,
        stages=STAGES,
        tables=TABLES,
        buckets=[label for label, _n in data["speed_rows"][0]["bins"]],
        chart_data=chart_data(data),
        **data,
    )


def chart_data(data: dict[str, Any]) -> dict[str, Any]:
    """What the charts draw: histograms with p50 and p90 placed on their axis, the funnel, conversion."""
    return {
        "speed": [
            {
                "milestone": row["milestone"],
                "n": row["n"],
                "bins": row["bins"],
                "marks": [
                    {"name": p, "seconds": row[p], "at": charts.position(row[p])}
                    for p in ("p50", "p90")
                    if row[p] is not None
                ],
            }
            for row in data["speed_rows"]
        ],
        "funnel": [[stage, data["totals"][stage]] for stage in STAGES],
        "stages": STAGES,
        "groups": data["groups"],
    }


@bp.get("/reports/<table>.csv")
@requires("read")
def export(table: str):
    """One report table as CSV, over the same date range."""
    if table not in TABLES:
        abort(404)
    start, end = date_range()
    data = build(start, end)
    out = io.StringIO()
    w = csv.writer(out)
    if table == "speed":
        w.writerow(["milestone", "leads", "p50_seconds", "p90_seconds"])
        w.writerows([r["milestone"], r["n"], r["p50"], r["p90"]] for r in data["speed_rows"])
    elif table in ("funnel_source", "funnel_service"):
        kind = table.split("_")[1]
        w.writerow([kind, *STAGES])
        w.writerows(
            [_cell(name), *(g.get(s, 0) for s in STAGES)] for name, g in sorted(data["groups"][kind].items())
        )
    else:
        cols = [
            "rep_name",
            "rep_phone",
            "handoffs",
            "acknowledged",
            "median_ack_seconds",
            "p90_ack_seconds",
            "within_sla",
            "late",
            "missed",
            "pct_within_sla",
        ]
        w.writerow(cols)
        w.writerows([_cell(c.get(k)) for k in cols] for c in data["cards"])
    name = f"leadbot-{table}-{start}-{end}.csv"
    return Response(
        out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _cell(value: Any) -> Any:
    """Neutralize spreadsheet formulas in user data (a source named '=HYPERLINK(...)')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
