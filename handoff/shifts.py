"""Working hours per weekday in a salesperson's own time zone.

Roster format (every key but ``timezone`` names one or more days)::

    hours:
      timezone: America/Chicago        # required, an IANA zone name
      mon-fri: "08:00-18:00"           # a range of days (wraps: fri-mon is fine)
      sat: "09:00-12:00, 13:00-15:00"  # several windows, comma separated
      sun: off                         # or leave the day out: unlisted days are off

Day keys: ``mon tue wed thu fri sat sun``, ranges ``mon-fri``, lists ``sat,sun``
and ``daily``. A day may be named only once. Windows are ``HH:MM-HH:MM`` with the
end after the start; ``24:00`` ends a window at midnight. An overnight shift is
written as two windows (``mon: "22:00-24:00"`` and ``tue: "00:00-06:00"``).
A rep with no ``hours`` at all is always on shift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# YAML 1.1 reads a bare `off`/`no` as False; accept it along with the words people write.
_CLOSED = {"off", "closed", "none", ""}

Window = tuple[int, int]  # minutes after local midnight: [start, end)


def as_utc(now: datetime) -> datetime:
    """An aware UTC datetime; naive values are UTC, as stored in the database."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


@dataclass(frozen=True)
class WorkingHours:
    """Weekly windows (Monday first) in one time zone."""

    timezone: str
    week: tuple[tuple[Window, ...], ...]

    @property
    def zone(self) -> ZoneInfo:
        """The ZoneInfo for this rep's time zone."""
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        """True when ``now`` falls inside one of today's windows in the rep's zone."""
        local = as_utc(now).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week[local.weekday()])

    def next_start(self, now: datetime) -> datetime | None:
        """The next window start strictly after ``now``, as an aware UTC datetime (None if never)."""
        now = as_utc(now)
        today = now.astimezone(self.zone).date()
        for offset in range(8):
            day = today + timedelta(days=offset)
            for start, _end in self.week[day.weekday()]:
                at = _local(day, start, self.zone).astimezone(UTC)
                if at > now:
                    return at
        return None

    def to_dict(self) -> dict[str, str]:
        """The canonical roster form: consecutive days with equal windows folded into ranges."""
        out: dict[str, str] = {"timezone": self.timezone}
        i = 0
        while i < 7:
            j = i
            while j + 1 < 7 and self.week[j + 1] == self.week[i]:
                j += 1
            if self.week[i]:
                key = DAYS[i] if i == j else f"{DAYS[i]}-{DAYS[j]}"
                out[key] = ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.week[i])
            i = j + 1
        return out


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Wall-clock time on ``day`` in ``zone``; aware arithmetic keeps wall time across DST."""
    return datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minute)


def _hhmm(minute: int) -> str:
    """Minutes after midnight as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_days(key: str) -> list[int]:
    """Weekday indexes named by a key such as ``mon-fri``, ``sat,sun`` or ``daily``."""
    days: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        if part == "daily":
            days.extend(range(7))
        elif "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"unknown day range '{part}' (use e.g. mon-fri)")
            a, b = DAYS.index(first), DAYS.index(last)
            days.extend((a + k) % 7 for k in range((b - a) % 7 + 1))
        elif part in DAYS:
            days.append(DAYS.index(part))
        else:
            raise ValueError(f"unknown day '{part}' (use mon, tue, wed, thu, fri, sat, sun)")
    return days


def parse_windows(value: object) -> tuple[Window, ...]:
    """Windows from ``"08:00-12:00, 13:00-17:00"``; off/closed/false means none."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in _CLOSED):
        return ()
    if not isinstance(value, str):
        raise ValueError(f"expected \"HH:MM-HH:MM\" or off, got {value!r}")
    windows: list[Window] = []
    for chunk in value.split(","):
        m = _WINDOW.match(chunk)
        if not m:
            raise ValueError(f"not a time window '{chunk.strip()}' (use HH:MM-HH:MM)")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440:
            raise ValueError(f"not a time of day in '{chunk.strip()}'")
        if end <= start:
            raise ValueError(f"window '{chunk.strip()}' ends before it starts (split overnight shifts)")
        windows.append((start, end))
    windows.sort()
    for (_s1, e1), (s2, _e2) in zip(windows, windows[1:], strict=False):
        if s2 < e1:
            raise ValueError(f"windows overlap in '{value}'")
    return tuple(windows)


def parse_hours(data: Mapping[object, object]) -> tuple[WorkingHours | None, list[tuple[str | None, str]]]:
    """Parse an ``hours`` mapping; returns the hours (None on error) and (key, message) errors."""
    errors: list[tuple[str | None, str]] = []
    tz = data.get("timezone")
    if tz is None:
        errors.append((None, "required key 'timezone' not provided (e.g. America/Chicago)"))
    elif not isinstance(tz, str):
        errors.append(("timezone", f"expected a time zone name, got {tz!r}"))
    else:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(("timezone", f"unknown time zone '{tz}'"))
    week: list[tuple[Window, ...] | None] = [None] * 7
    for key, value in data.items():
        if key == "timezone":
            continue
        try:
            days = parse_days(str(key))
            windows = parse_windows(value)
        except ValueError as exc:
            errors.append((str(key), str(exc)))
            continue
        for d in days:
            if week[d] is not None:
                errors.append((str(key), f"day '{DAYS[d]}' is given more than once"))
            week[d] = windows
    if errors:
        return None, errors
    return WorkingHours(str(tz), tuple(w or () for w in week)), []
