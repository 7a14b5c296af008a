"""Holidays in the calling-rules table: a date, or a public-holiday calendar from python-holidays.

A calendar ('US', 'US-RI', 'CA-ON') knows every year's moving holidays and the days a weekend
holiday is observed, so the table needs no yearly dates for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import holidays as calendars

from bot.flows.yamlmarks import MarkedDict, MarkedList

HOLIDAY_DATE = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Holiday:
    """A day without automated outreach: every year (year None) or once; or, with `calendar`, every
    holiday of a python-holidays calendar (e.g. 'US-RI': the federal and Rhode Island holidays, the
    days a weekend holiday is observed included), any year, or just those whose names contain one
    of `only`."""

    month: int
    day: int
    year: int | None
    name: str
    calendar: str = ""
    only: tuple[str, ...] = ()

    def name_on(self, d: date) -> str | None:
        """The holiday's name when `d` is (one of) this entry's holidays, else None."""
        if not self.calendar:
            hit = (d.month, d.day) == (self.month, self.day) and self.year in (None, d.year)
            return self.name if hit else None
        found = calendar_of(self.calendar).get(d)
        if found and self.only:
            found = "; ".join(n for n in found.split("; ") if any(o.lower() in n.lower() for o in self.only))
        return found or None

    def falls_on(self, d: date) -> bool:
        """True when `d` is this holiday."""
        return self.name_on(d) is not None


@lru_cache(maxsize=64)
def calendar_of(code: str) -> calendars.HolidayBase:
    """python-holidays' calendar for 'US', 'US-RI' or 'CA-ON', observed days included; it fills in
    each year when first asked. NotImplementedError for a country or subdivision it does not know."""
    country, _, subdiv = code.partition("-")
    return calendars.country_holidays(country, subdiv=subdiv or None, observed=True)


def warm_calendars(entries: list[Holiday], today: date) -> None:
    """Fill these holidays' calendars for this year and the next: a calendar's first lookup of a
    year costs ~75 ms, which a lead would otherwise wait for."""
    for code in {h.calendar for h in entries if h.calendar}:
        for year in (today.year, today.year + 1):
            calendar_of(code).get(date(year, 1, 1))


class HolidayChecks:
    """The table checker's holiday lists: a mixin of bot.compliance.rules' checker, whose `error`
    and `mapping` it uses."""

    def holidays(self, node: Any, line: int, at: str = "holidays") -> tuple[Holiday, ...]:
        if not isinstance(node, MarkedList):
            self.error(line, at, "expected a list of {date: YYYY-MM-DD or MM-DD, name: ...} or "
                                 "{calendar: US-RI}")
            return ()
        found = []
        for i, item in enumerate(node):
            where = f"{at}[{i}]"
            if not self.mapping(item, where, node.line_of(i), ("date", "name", "calendar", "only")):
                continue
            if "calendar" in item or "only" in item:
                if (entry := self.calendar(item, where, node.line_of(i))) is not None:
                    found.append(entry)
                continue
            raw = str(item.get("date", ""))
            match = HOLIDAY_DATE.match(raw)
            try:
                if not match:
                    raise ValueError
                year, month, day = (int(g) if g else None for g in match.groups())
                date(year or 2024, month, day)  # 2024: a leap year, so 02-29 is a valid yearly date
            except ValueError:
                self.error(item.line_of("date"), f"{where}.date",
                           f"expected YYYY-MM-DD or MM-DD, got {raw!r}")
                continue
            found.append(Holiday(month, day, year, str(item.get("name") or raw)))
        return tuple(found)

    def calendar(self, item: MarkedDict, where: str, line: int) -> Holiday | None:
        """{calendar: US-RI, only: [...]}: a python-holidays calendar; `only` checked against this
        year's names and the next's."""
        code = str(item.get("calendar", "")).strip().upper()
        if "date" in item or not code:
            self.error(line, where, "give either a date or a calendar (e.g. calendar: US-RI), not both")
            return None
        try:
            cal = calendar_of(code)
        except (NotImplementedError, KeyError, ValueError):
            self.error(item.line_of("calendar"), f"{where}.calendar",
                       f"unknown calendar {code!r} (a country code, e.g. US, or with a state: US-RI)")
            return None
        raw = item.get("only", [])
        only = [raw] if isinstance(raw, str) else raw
        if not isinstance(only, list) or not all(isinstance(o, str) and o.strip() for o in only):
            self.error(item.line_of("only"), f"{where}.only", "expected a holiday's name or a list of names")
            return None
        years = (date.today().year, date.today().year + 1)
        for year in years:  # the cached calendar leads use: filled here once, not built a second time
            cal.get(date(year, 1, 1))
        names = {n for day, joined in cal.items() if day.year in years for n in joined.split("; ")}
        for o in only:
            if not any(o.lower() in n.lower() for n in names):
                self.error(item.line_of("only"), f"{where}.only",
                           f"{o!r} is not a holiday of {code} (its names: {', '.join(sorted(names))})")
                return None
        return Holiday(0, 0, None, str(item.get("name") or code), code, tuple(o.strip() for o in only))
