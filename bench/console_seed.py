"""Fill a database with realistic leads for the console bench (and for screenshots): Core bulk inserts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.store.handoff_tables import Handoff
from bot.store.tables import Event, Lead, new_id, utcnow

SOURCES = ["google", "facebook", "website", "angi", "referral"]
SERVICES = ["roofing", "kitchen remodel", "siding", "windows", "bathroom remodel"]
REPS = [
    ("Rosa Reed", "+15125550191"),
    ("Sam Stone", "+15125550192"),
    ("Tara Tran", "+15125550193"),
    ("Uma Upton", "+15125550194"),
    ("Vic Vega", "+15125550195"),
]
BATCH = 5_000


def _journey(rng: random.Random, lead_id: str, t0: datetime) -> tuple[str, list[dict[str, Any]], dict | None]:
    """One lead's status, events and (maybe) handoff, with plausible delays."""
    ev = [("received", 0.0), ("queued", 0.05), ("dialing", rng.uniform(0.5, 6.0))]
    t = ev[-1][1]
    handoff = None
    roll = rng.random()
    if roll < 0.2:
        status = "no_answer"
        ev.append(("call.no-answer", t + 25))
    else:
        t += rng.uniform(4, 20)
        ev.append(("answered", t))
        for _step in ("need", "budget", "timing", "authority"):
            t += rng.uniform(3, 9)
            ev.append(("answer", t))
        if roll < 0.45:
            status = "disqualified"
            ev.append(("disqualified", t + 1))
        elif roll < 0.7:
            status = "nurturing"
            ev.append(("nurture", t + 1))
        else:
            status = "handed_off"
            ev += [("qualified", t + 1), ("handoff_matched", t + 1.1)]
            name, phone = rng.choice(REPS)
            ack = rng.lognormvariate(4.5, 0.9) if rng.random() < 0.85 else None
            offered = t0 + timedelta(seconds=t + 1.1)
            handoff = {
                "id": new_id(),
                "lead_id": lead_id,
                "rep_name": name,
                "rep_phone": phone,
                "mode": "sms",
                "status": "acked" if ack else "missed",
                "try_number": 1,
                "details": {},
                "created_at": offered,
                "updated_at": offered,
                "due_at": offered + timedelta(minutes=5),
                "acked_at": offered + timedelta(seconds=ack) if ack else None,
            }
            if ack:
                ev.append(("handoff_acked", t + 1.1 + ack))
            else:
                status = "qualified"
    events = [{"lead_id": lead_id, "type": k, "at": t0 + timedelta(seconds=s), "data": {}} for k, s in ev]
    return status, events, handoff


def seed(engine: Engine, leads: int, days: int, seed_value: int = 7) -> str:
    """Insert `leads` leads spread over the last `days` days; returns the newest lead's id."""
    rng = random.Random(seed_value)
    now = utcnow()
    newest = ""
    with engine.begin() as conn:
        for start in range(0, leads, BATCH):
            lead_rows, event_rows, handoff_rows = [], [], []
            for i in range(start, min(start + BATCH, leads)):
                lead_id = new_id()
                t0 = now - timedelta(seconds=(leads - i) * days * 86400 / leads)
                status, events, handoff = _journey(rng, lead_id, t0)
                lead_rows.append(
                    {
                        "id": lead_id,
                        "name": f"Lead {i:06d}",
                        "phone": f"+1512{550 + i // 10_000}{i % 10_000:04d}",
                        "email": f"lead{i}@example.com",
                        "service": rng.choice(SERVICES),
                        "channel": "call",
                        "source": rng.choice(SOURCES),
                        "language": "en",
                        "status": status,
                        "consent": True,
                        "answers": {},
                        "created_at": t0,
                        "updated_at": t0,
                    }
                )
                event_rows += events
                if handoff:
                    handoff_rows.append(handoff)
                newest = lead_id
            conn.execute(insert(Lead), lead_rows)
            conn.execute(insert(Event), event_rows)
            if handoff_rows:
                conn.execute(insert(Handoff), handoff_rows)
    return newest
