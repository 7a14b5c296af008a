"""TCPA-style gate: calling hours in the lead's local time, consent, and opt-out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.flows import answers
from bot.store.leads import OPT_OUTS
from bot.store.prepared import joined
from bot.store.tables import Lead, OptOut

# Every outbound attempt asks this: a prepared statement, not an ORM get (see bot.store.prepared).
OPTED_OUT = select(OPT_OUTS.c.phone).where(OPT_OUTS.c.phone == bindparam("phone"))



@dataclass(frozen=True)
class Verdict:
    """May we contact now? If not, why, and when we may (None = never)."""

    allowed: bool
    reason: str = ""
    not_before: datetime | None = None


def parse_hours(spec: str) -> tuple[time, time]:
    """'08:00-21:00' -> (08:00, 21:00)."""
    start, end = (time.fromisoformat(p.strip()) for p in spec.split("-", 1))
    return start, end


def _zones(lead: Lead) -> list[ZoneInfo]:
    """Every zone the number may be in; unknown falls back to the strictest common US reading."""
    names = [z for z in (lead.timezone or "").split(",") if z]
    return [ZoneInfo(z) for z in names] or [ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")]


def next_window(zones: list[ZoneInfo], hours: tuple[time, time], now: datetime) -> datetime:
    """`now` when it is inside the window in every zone, else the first instant that is."""
    start, end = hours

    def inside(t: datetime) -> bool:
        return all(start <= t.astimezone(z).time() < end for z in zones)

    if inside(now):
        return now
    # Step in 5-minute increments over two days: simple, exact enough, and fast (<600 checks).
    t = now.replace(second=0, microsecond=0)
    for _ in range(2 * 24 * 12):
        t += timedelta(minutes=5)
        if inside(t):
            return t
    raise ValueError(f"calling hours {start}-{end} never overlap across zones {zones}")


def check(session: Session, lead: Lead, hours_spec: str, now: datetime | None = None) -> Verdict:
    """The gate every outbound call or text passes through."""
    now = now or datetime.now(UTC)
    if joined(session.connection()).first(OPTED_OUT, {"phone": lead.phone}) is not None:
        return Verdict(False, "number opted out")
    if lead.channel == "email":
        return Verdict(True)
    if not lead.consent:
        return Verdict(False, "no consent on record")
    when = next_window(_zones(lead), parse_hours(hours_spec), now)
    if when > now:
        return Verdict(False, "outside calling hours in the lead's time zone", when)
    return Verdict(True)


def is_opt_out(text: str | None) -> bool:
    """True for a carrier opt-out keyword (STOP, UNSUBSCRIBE, ...) or a plain "stop texting me"."""
    return answers.is_opt_out(text or "")


def opt_out(session: Session, phone: str, source: str) -> None:
    """Record an opt-out (idempotent)."""
    if session.get(OptOut, phone) is None:
        session.add(OptOut(phone=phone, source=source))
