"""ivr_flows/calling_rules.yaml: calling windows, days, caps and holidays, validated with file:line errors."""

from __future__ import annotations

import dataclasses
import re
import threading
import time as monotonic
from dataclasses import dataclass, field
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Any

import holidays as calendars
import phonenumbers
from phonenumbers import geocoder

from bot.flows.errors import FlowError
from bot.flows.yamlmarks import MarkedDict, MarkedList, parse_yaml, shown
from bot.store.states import STATES

RULES_FILE = "calling_rules.yaml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW = re.compile(r"^\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*-\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*$")
HOLIDAY_DATE = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")
TOP_KEYS = ("federal", "texts_per_day", "texts_source", "holidays", "states", "countries")
RULE_KEYS = ("window", "days", "calls_per_24h", "texts_per_24h", "holidays", "source")
RECHECK_S = 1.0

Window = tuple[time, time]


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


@dataclass(frozen=True)
class Rule:
    """One jurisdiction's limits; `days` maps a weekday (0 = Monday) to its window, or None when closed.

    `holidays` are the state's own days without calls or texts (the table's `holidays` stop email too).
    """

    name: str
    window: Window
    days: dict[int, Window | None] = field(default_factory=dict)
    calls_per_24h: int | None = None
    texts_per_24h: int | None = None
    source: str = ""
    holidays: tuple[Holiday, ...] = ()

    def window_on(self, weekday: int) -> Window | None:
        """The window on that weekday (None = no calls at all that day)."""
        return self.days.get(weekday, self.window)


@dataclass(frozen=True)
class CallingRules:
    """The whole table: the federal rule, per-state and per-country overrides, holidays and the
    daily text cap. A country's rule (keyed by its ISO code, e.g. CA) applies to the numbers
    phonenumbers places in that country, on top of the federal rule."""

    federal: Rule
    states: dict[str, Rule] = field(default_factory=dict)
    holidays: tuple[Holiday, ...] = ()
    texts_per_day: int | None = None
    texts_source: str = ""
    path: str = ""
    countries: dict[str, Rule] = field(default_factory=dict)

    def override_hours(self, window: Window) -> CallingRules:
        """CALLING_HOURS: one window for every lead, every day, holidays included; caps still apply."""
        federal = dataclasses.replace(self.federal, window=window, days={}, holidays=())
        states, countries = ({code: dataclasses.replace(r, window=window, days={}, holidays=())
                              for code, r in table.items()} for table in (self.states, self.countries))
        return dataclasses.replace(self, federal=federal, states=states, countries=countries, holidays=())


DEFAULT_RULES = CallingRules(Rule("federal", (time(8), time(21)), source="47 CFR 64.1200(c)(1)"))


# The countries a rule may name: every region phonenumbers knows but the US (the federal rule and
# the states cover it).
COUNTRIES = tuple(sorted(phonenumbers.SUPPORTED_REGIONS - {"US"}))


def country_name(code: str) -> str:
    """'CA' -> 'Canada': a country rule's name in the timeline's reasons (a state's is its code)."""
    sample = phonenumbers.example_number(code)
    return (geocoder.country_name_for_number(sample, "en") if sample is not None else "") or code


def parse_window(spec: str) -> Window:
    """'08:00-21:00' -> (08:00, 21:00); ValueError unless the start comes before the end."""
    match = WINDOW.match(spec or "")
    if not match:
        raise ValueError(f"expected a window like '08:00-21:00', got {spec!r}")
    start, end = (time.fromisoformat(p.zfill(5) if len(p) < 5 else p) for p in match.groups())
    if start >= end:
        raise ValueError(f"the window {spec!r} must start before it ends (windows cannot cross midnight)")
    return start, end


class _Checker:
    """Collects every error with its line, the way the flow loader does."""

    def __init__(self, path: str) -> None:
        self.path, self.errors = path, []

    def error(self, line: int | None, where: str, message: str) -> None:
        self.errors.append(FlowError(self.path, line or None, where, message))

    def mapping(self, node: Any, where: str, line: int, keys: tuple[str, ...], expected: str = "") -> bool:
        if not isinstance(node, MarkedDict):
            self.error(line, where, f"expected a mapping, got {shown(node)}")
            return False
        for key in node:
            if key not in keys:
                self.error(node.line_of(key), f"{where}.{key}" if where else str(key),
                           f"unknown key (expected {expected or 'one of: ' + ', '.join(keys)})")
        for key, dup_line in node.duplicates:
            self.error(dup_line, f"{where}.{key}" if where else str(key), "key given twice")
        return True

    def count(self, node: Any, where: str, line: int) -> int | None:
        if node is None:
            return None
        if isinstance(node, bool) or not isinstance(node, int) or node < 0:
            self.error(line, where, f"expected a whole number of 0 or more, got {shown(node)}")
            return None
        return node

    def window(self, node: Any, where: str, line: int) -> Window | None:
        try:
            return parse_window(str(node))
        except ValueError as exc:
            self.error(line, where, str(exc))
            return None

    def rule(self, name: str, node: Any, where: str, line: int, base: Window,
             need_source: bool) -> Rule | None:
        if not self.mapping(node, where, line, RULE_KEYS):
            return None
        window = (self.window(node["window"], f"{where}.window", node.line_of("window"))
                  if "window" in node else base)
        source = node.get("source")
        if need_source and not (isinstance(source, str) and source.strip()):
            self.error(node.line_of("source") if "source" in node else line, f"{where}.source",
                       "required: cite the law or rule (a 'source:' line)")
        days: dict[int, Window | None] = {}
        days_node = node.get("days", MarkedDict())
        if self.mapping(days_node, f"{where}.days", node.line_of("days"), DAYS):
            for day, spec in days_node.items():
                if day in DAYS:
                    closed = spec is None or str(spec).strip().lower() in ("closed", "none", "no calls")
                    at = f"{where}.days.{day}"
                    days[DAYS.index(day)] = None if closed else self.window(spec, at, days_node.line_of(day))
        calls, texts = (self.count(node.get(key), f"{where}.{key}", node.line_of(key))
                        for key in ("calls_per_24h", "texts_per_24h"))
        holidays = (self.holidays(node["holidays"], node.line_of("holidays"), f"{where}.holidays")
                    if "holidays" in node else ())
        return Rule(name, window or base, days, calls, texts, str(source or "").strip(), holidays)

    def holidays(self, node: Any, line: int, at: str = "holidays") -> tuple[Holiday, ...]:
        if not isinstance(node, MarkedList):
            self.error(line, at, "expected a list of {date: YYYY-MM-DD or MM-DD, name: ...} or {calendar: US-RI}")
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
        """{calendar: US-RI, only: [...]}: a python-holidays calendar, checked against this year's and next."""
        code = str(item.get("calendar", "")).strip().upper()
        if "date" in item or not code:
            self.error(line, where, "give either a date or a calendar (e.g. calendar: US-RI), not both")
            return None
        try:
            calendar_of(code)
        except (NotImplementedError, KeyError, ValueError):
            self.error(item.line_of("calendar"), f"{where}.calendar",
                       f"unknown calendar {code!r} (a country code, e.g. US, or with a state: US-RI)")
            return None
        raw = item.get("only", [])
        only = [raw] if isinstance(raw, str) else raw
        if not isinstance(only, list) or not all(isinstance(o, str) and o.strip() for o in only):
            self.error(item.line_of("only"), f"{where}.only", "expected a holiday's name or a list of names")
            return None
        year = date.today().year
        country, _, subdiv = code.partition("-")
        listed = calendars.country_holidays(country, subdiv=subdiv or None, years=[year, year + 1], observed=True)
        names = {n for joined in listed.values() for n in joined.split("; ")}
        for o in only:
            if not any(o.lower() in n.lower() for n in names):
                self.error(item.line_of("only"), f"{where}.only",
                           f"{o!r} is not a holiday of {code} (its names: {', '.join(sorted(names))})")
                return None
        return Holiday(0, 0, None, str(item.get("name") or code), code, tuple(o.strip() for o in only))


def load_rules_text(text: str, path: str = RULES_FILE) -> tuple[CallingRules | None, list[FlowError]]:
    """Validate the table; (rules, []) when valid, else (None, every error found)."""
    data, line, message = parse_yaml(text)
    if message:
        return None, [FlowError(path, line, "", message)]
    check = _Checker(path)
    if not check.mapping(data, "", 1, TOP_KEYS):
        return None, check.errors
    if "federal" not in data:
        check.error(1, "federal", "required: the federal window, e.g. window: '08:00-21:00'")
    federal = check.rule("federal", data.get("federal", MarkedDict()), "federal", data.line_of("federal"),
                         DEFAULT_RULES.federal.window, need_source=True)
    states: dict[str, Rule] = {}
    states_node = data.get("states", MarkedDict())
    if check.mapping(states_node, "states", data.line_of("states"), tuple(STATES)):
        for code, node in states_node.items():
            if code in STATES and federal is not None:
                rule = check.rule(str(code), node, f"states.{code}", states_node.line_of(code),
                                  federal.window, need_source=True)
                if rule is not None:
                    states[str(code)] = rule
    countries: dict[str, Rule] = {}
    countries_node = data.get("countries", MarkedDict())
    if (check.mapping(countries_node, "countries", data.line_of("countries"), COUNTRIES,
                      "a country's two-letter ISO code other than US, e.g. CA") and federal is not None):
        for code, node in countries_node.items():
            if code in COUNTRIES:
                rule = check.rule(country_name(str(code)), node, f"countries.{code}",
                                  countries_node.line_of(code), federal.window, need_source=True)
                if rule is not None:
                    countries[str(code)] = rule
    holidays = check.holidays(data["holidays"], data.line_of("holidays")) if "holidays" in data else ()
    texts = check.count(data.get("texts_per_day"), "texts_per_day", data.line_of("texts_per_day"))
    if check.errors or federal is None:
        return None, sorted(set(check.errors), key=lambda e: (e.line or 0, e.where))
    texts_source = str(data.get("texts_source") or "")
    return CallingRules(federal, states, holidays, texts, texts_source, path, countries), []


def load_rules(path: str | Path) -> tuple[CallingRules | None, list[FlowError]]:
    """Read and validate the table file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(str(path), None, "", f"cannot read file: {exc}")]
    return load_rules_text(text, str(path))


class RulesFile:
    """The table, re-read when the file changes (a broken edit keeps the last good table)."""

    def __init__(self, path: Path) -> None:
        self.path, self._lock = Path(path), threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._rules, self.errors = DEFAULT_RULES, []

    def current(self) -> CallingRules:
        """The newest valid table (the built-in federal rule when the file is missing)."""
        now = monotonic.monotonic()
        if now - self._checked < RECHECK_S:
            return self._rules
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
            except OSError:
                return self._rules
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                rules, self.errors = load_rules(self.path)
                if rules is not None:
                    self._rules = rules
        return self._rules
