"""ivr_flows/calling_rules.yaml: calling windows, days, caps and holidays, validated with file:line errors."""

from __future__ import annotations

import dataclasses
import re
import threading
import time as monotonic
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import geocoder

from bot.compliance.calendars import Holiday, HolidayChecks
from bot.flows.errors import FlowError
from bot.flows.yamlmarks import MarkedDict, parse_yaml, shown
from bot.store.states import STATES

RULES_FILE = "calling_rules.yaml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW = re.compile(r"^\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*-\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*$")
TOP_KEYS = ("federal", "texts_per_day", "texts_source", "holidays", "states", "countries")
RULE_KEYS = ("window", "days", "calls_per_24h", "texts_per_24h", "contacts_per_24h", "holidays", "source")
RECHECK_S = 1.0

Window = tuple[time, time]


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
    contacts_per_24h: int | None = None  # calls and texts together

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

    def all_holidays(self) -> list[Holiday]:
        """Every holiday entry of the table: its own, the states' and the countries'."""
        regional = (*self.states.values(), *self.countries.values())
        return [*self.holidays, *(h for rule in regional for h in rule.holidays)]

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


class _Checker(HolidayChecks):
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
        calls, texts, contacts = (self.count(node.get(key), f"{where}.{key}", node.line_of(key))
                                  for key in ("calls_per_24h", "texts_per_24h", "contacts_per_24h"))
        holidays = (self.holidays(node["holidays"], node.line_of("holidays"), f"{where}.holidays")
                    if "holidays" in node else ())
        return Rule(name, window or base, days, calls, texts, str(source or "").strip(), holidays, contacts)



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
