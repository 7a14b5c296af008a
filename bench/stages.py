"""Where a lead's speed-to-dial goes, stage by stage, read back from leadbot's own records.

`speed_to_dial.py --stages` calls this after each leadbot scenario. Every lead leaves wall-clock
stamps behind: the bench's send time, the lead row's `created_at` (intake, before the commit), the
`queued` event (RQ's `enqueued_at`, after the commit), RQ's `started_at` on the job hash (a worker
took it), the `dialing` event (claim done, just before the twilio request) and the fake Twilio's
arrival. Each stage gets its p50 and p99, and its mean over the slowest 1% of leads: the stage whose
mean grows there is where the tail comes from.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from common import fmt, markdown_table, percentile

STAGES = [
    ("intake", "POST sent → lead row built (parse, validate, dedupe lookups)"),
    ("commit+enqueue", "row built → job enqueued (INSERTs, commit, RQ enqueue)"),
    ("queue wait", "enqueued → a job worker starts it"),
    ("claim", "job start → just before the twilio request (load, compliance, attempt)"),
    ("twilio", "twilio request → Calls.json at the fake"),
]


@dataclass
class Lead:
    """One lead of a scenario: its phone and the bench's wall-clock send and arrival times."""

    phone: str
    sent: float
    arrived: float | None


def _wall(value: str | None) -> float | None:
    """SQLAlchemy's naive-UTC SQLite text, or RQ's ISO stamp, as epoch seconds."""
    if not value:
        return None
    text = value.rstrip("Z").replace(" ", "T")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def stage_times(db: Path, redis_url: str, leads: list[Lead]) -> list[list[float]]:
    """Per lead that was dialed, the duration of each stage in ms (in STAGES order)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    r = redis.Redis.from_url(redis_url)
    out = []
    try:
        for lead in leads:
            row = conn.execute(
                "SELECT l.id, l.created_at,"
                " (SELECT at FROM events WHERE lead_id = l.id AND type = 'queued'),"
                " (SELECT at FROM events WHERE lead_id = l.id AND type = 'dialing')"
                " FROM leads l WHERE l.phone = ? ORDER BY l.created_at DESC LIMIT 1", (lead.phone,),
            ).fetchone()
            if row is None or lead.arrived is None:
                continue
            started = r.hget(f"rq:job:contact-{row[0]}", "started_at")
            marks = [lead.sent, _wall(row[1]), _wall(row[2]), _wall(started.decode() if started else None),
                     _wall(row[3]), lead.arrived]
            if any(m is None for m in marks):
                continue
            out.append([(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)])
    finally:
        conn.close()
    return out


def stage_table(title: str, times: list[list[float]]) -> str:
    """p50, p99 and the slowest 1%'s mean per stage, plus the end-to-end row."""
    if not times:
        return f"{title}: no lead could be traced"
    totals = [sum(t) for t in times]
    cut = percentile(totals, 99)
    slow = [t for t, total in zip(times, totals, strict=True) if total >= cut]
    rows = []
    for i, (name, what) in enumerate(STAGES):
        col = [t[i] for t in times]
        rows.append([name, what, fmt(percentile(col, 50)), fmt(percentile(col, 99)),
                     fmt(sum(t[i] for t in slow) / len(slow))])
    rows.append(["total", "POST sent → Calls.json", fmt(percentile(totals, 50)), fmt(percentile(totals, 99)),
                 fmt(sum(sum(t) for t in slow) / len(slow))])
    return (f"{title} ({len(times)} leads traced; slowest 1% = {len(slow)} leads)\n\n"
            + markdown_table(["stage", "from → to", "p50 ms", "p99 ms", "slowest 1% mean ms"], rows))
