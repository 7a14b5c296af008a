"""Builders for handoff tests: reps, rosters and fixed instants."""

from __future__ import annotations

from datetime import datetime

from handoff.roster import Manager, Rep, Roster
from handoff.shifts import parse_hours

MANAGERS = (Manager("Priya Natarajan", "priya@example.com"), Manager("Tom Becker", "tom@example.com"))
WEEKDAYS_9_TO_5 = {"timezone": "America/Chicago", "mon-fri": "09:00-17:00"}


def rep(name: str, phone: str, *, services: tuple[str, ...] = ("roofing",),
        hours: dict[str, str] | None = None, **kw: object) -> Rep:
    """A rep for tests; ``hours`` in roster form."""
    parsed = None
    if hours is not None:
        parsed, errors = parse_hours(hours)
        assert not errors, errors
    email = name.split()[0].lower() + "@example.com"
    return Rep(name=name, phone=phone, email=email, services=services, hours=parsed, **kw)  # type: ignore[arg-type]


def roster(*reps: Rep, sla_minutes: float = 5) -> Roster:
    """A roster with the standard two managers."""
    return Roster(MANAGERS, tuple(reps), (), sla_minutes)


# Tuesday 2024-06-04 15:00 UTC is 10:00 in Chicago (CDT), 08:00 in Los Angeles.
TUESDAY_10_CHICAGO = datetime(2024, 6, 4, 15, 0)
