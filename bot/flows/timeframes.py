"""Timeframe answers ("asap", "next month", "in the spring", "not for a year") as days from now."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from dateparser.date import DateDataParser
from text_to_num import alpha2digit

from bot.flows.model import UNKNOWN
from bot.flows.words import UNKNOWN_PHRASES, fold, table, tokens

UNITS = {
    "day": 1,
    "days": 1,
    "dia": 1,
    "dias": 1,
    "week": 7,
    "weeks": 7,
    "wk": 7,
    "wks": 7,
    "semana": 7,
    "semanas": 7,
    "month": 30,
    "months": 30,
    "mo": 30,
    "mos": 30,
    "mes": 30,
    "meses": 30,
    "year": 365,
    "years": 365,
    "yr": 365,
    "yrs": 365,
    "ano": 365,
    "anos": 365,
}
MONTHS = {
    name: i + 1
    for i, names in enumerate(
        "january enero|february febrero|march marzo|april abril|may mayo|june junio|july julio|august agosto|"
        "september sept septiembre|october octubre|november noviembre|december diciembre".split("|")
    )
    for name in names.split()
}
# Only text that looks like a date goes to dateparser: it is slow on arbitrary words.
_DATE_LIKE = re.compile(
    r"\d|tomorrow|manana|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"lunes|martes|miercoles|jueves|viernes|sabado|domingo|weekend"
)
_MAY_LEADS = frozenset("in by until till around early late mid next this before en para de".split())
SEASONS = {
    "spring": 3,
    "primavera": 3,
    "summer": 6,
    "verano": 6,
    "fall": 9,
    "autumn": 9,
    "otono": 9,
    "winter": 12,
    "invierno": 12,
}
KINDS = table(
    {
        "asap": "asap | a s a p | right away | right now | now | immediately | today | tonight | "
        "as soon as possible | as soon as you can | soon as possible | urgent | urgently | emergency | "
        "yesterday | like yesterday | this week | within the week | ready now | ready to go | "
        "whenever you can | lo antes posible | cuanto antes | ya | ahora | ahora mismo | de inmediato | "
        "inmediatamente | urgente | hoy | esta semana | lo mas pronto posible",
        "soon": "soon | pretty soon | very soon | shortly | in the next few days | next few days | "
        "pronto | muy pronto",
        "someday": "not now | not right now | not yet | not this year | someday | some day | one day | "
        "eventually | no rush | no hurry | not in a hurry | "
        "just looking | just browsing | just getting quotes | just getting prices | just curious | "
        "not anytime soon | not any time soon | down the road | in the future | whenever | flexible | "
        "im flexible | anytime | any time | no timeline | no time frame | "
        "algun dia | mas adelante | en el futuro | sin prisa",
        "unknown": UNKNOWN_PHRASES,
    }
)
_DURATION = re.compile(
    r"(?P<n>\d+(?:\.\d+)?|a|an|one|half a|a half|a couple of|a couple|couple of|couple|a few|few|several|"
    r"un|una|unos|unas|un par de)\s*(?P<unit>" + "|".join(sorted(UNITS, key=len, reverse=True)) + r")\b"
)
_COUNTS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "un": 1,
    "una": 1,
    "half a": 0.5,
    "a half": 0.5,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "couple": 2,
    "a few": 3,
    "few": 3,
    "several": 4,
    "unos": 3,
    "unas": 3,
    "un par de": 2,
}
_WINDOW = re.compile(
    r"\b(?:within(?: the next)?|in the next|over the next|before|by|no later than|"
    r"in less than|less than|under|dentro de|antes de)\s+$"
)
_DEFER = re.compile(
    r"\b(?:not for|not until|not till|not before|at least|after|more than|over|"
    r"no antes de|despues de)\s+(?:another\s+|about\s+|like\s+)?$"
)
_NEXT = re.compile(r"\b(?:next|proximo|proxima|que viene)\b")

# One module-level parser: building it per call, and its first parse, are the slow parts of dateparser.
_DATEPARSER = DateDataParser(languages=["en", "es"], settings={"PREFER_DATES_FROM": "future"})


def warm() -> None:
    """Pay dateparser's one-time loading cost now instead of on a live call."""
    _DATEPARSER.get_date_data("next tuesday")


def _value(kind: str, start: date, end: date, today: date, days: int | None = None) -> dict[str, Any]:
    if days is None:
        days = (start - today).days
    return {"kind": kind, "days_from_now": max(days, 0), "start": start.isoformat(), "end": end.isoformat()}


def _window(today: date, end: date) -> dict[str, Any]:
    """An open window starting now: expected roughly halfway through it."""
    return _value("window", today, end, today, days=(end - today).days // 2)


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _season(month: int, today: date, force_next: bool) -> dict[str, Any]:
    # Winter runs December to February, so in January the current winter began last year.
    start = date(today.year - (1 if month == 12 and today.month <= 2 else 0), month, 1)
    end = _month_end(date(start.year + (start.month + 1) // 12, (start.month + 1) % 12 + 1, 1))
    if today > end or (force_next and start <= today):
        start, end = start.replace(year=start.year + 1), end.replace(year=end.year + 1)
    if start <= today <= end:
        return _window(today, end)
    return _value("season", start, end, today)


def _duration(match: re.Match[str]) -> float:
    n = match.group("n")
    count = _COUNTS.get(n, None) if n else 1
    return (float(n) if count is None else count) * UNITS[match.group("unit")]


def _relative(text: str, today: date) -> dict[str, Any] | None:
    """Durations: "in 2 weeks", "within a month", "not for a year", "6 months from now"."""
    match = _DURATION.search(text)
    if not match:
        return None
    days = round(_duration(match))
    before = text[: match.start()]
    end = today + timedelta(days=days)
    if _WINDOW.search(before):
        return _window(today, end)
    return _value("deferred" if _DEFER.search(before) else "date", end, end, today)


def _named(text: str, today: date) -> dict[str, Any] | None:
    """Calendar words: next week/month/year, this month/year, end of the month, seasons."""
    words = set(text.split())
    nxt = bool(_NEXT.search(text))
    for name, month in SEASONS.items():
        if name in words:
            found = _season(month, today, nxt)
            if re.search(rf"\b(?:before|by)\s+(?:the\s+)?{name}", text) and found["kind"] == "season":
                return _window(today, date.fromisoformat(found["start"]))
            return found
    if words & {"weekend", "finde"}:
        saturday = today + timedelta(days=(5 - today.weekday()) % 7 + (7 if nxt else 0))
        return _value("date", saturday, saturday + timedelta(days=1), today)
    if words & {"week", "semana"} and nxt:
        start = today + timedelta(days=7 - today.weekday())
        return _value("date", start, start + timedelta(days=6), today)
    if words & {"month", "mes"}:
        if nxt:
            start = _month_end(today) + timedelta(days=1)
            return _value("date", start, _month_end(start), today)
        return _window(today, _month_end(today))
    if words & {"year", "ano"}:
        if nxt:
            start = date(today.year + 1, 1, 1)
            return _value("date", start, date(start.year, 12, 31), today)
        return _window(today, date(today.year, 12, 31))
    return None


def _month(text: str, today: date) -> dict[str, Any] | None:
    """A bare month name: this month is now, a later one starts on the 1st, an earlier one is next year."""
    words = text.split()
    # "may" is usually the verb; count it only alone or after a word that introduces a date.
    month = next(
        (
            MONTHS[w]
            for i, w in enumerate(words)
            if w in MONTHS and (w != "may" or len(words) == 1 or (i and words[i - 1] in _MAY_LEADS))
        ),
        None,
    )
    if month is None or re.search(r"\d", text):
        return None
    if month == today.month:
        return _window(today, _month_end(today))
    start = date(today.year + (1 if month < today.month else 0), month, 1)
    return _value("date", start, _month_end(start), today)


def _digits(words: list[str], language: str) -> str:
    """Number words to digits in the lead's language, then in the other one we know."""
    text = " ".join(words)
    for lang in dict.fromkeys((language if language in ("en", "es") else "en", "en", "es")):
        text = alpha2digit(text, lang, threshold=0)
    return text


def parse_timeframe(text: str, language: str = "en", now: datetime | None = None) -> Any:
    """{"kind", "days_from_now", "start", "end"}, UNKNOWN, or None when not understood.

    `days_from_now` is when work would start: a date's distance, a future period's first day, or the middle
    of an open window that starts now ("this month", "within 6 weeks"); None for "someday".
    """
    now = now or datetime.now()
    today = now.date()
    words = tokens(text)
    if not words:
        return None
    hit = KINDS.first(words)
    kind = hit[2] if hit else None
    digits = _digits(words, language)
    found = _relative(digits, today)
    if found:
        return found
    if kind == "asap":
        return _value("asap", today, today, today)
    if kind == "someday":
        return {"kind": "someday", "days_from_now": None, "start": None, "end": None}
    found = _named(digits, today) or _month(digits, today)
    if found:
        return found
    if kind == "soon":
        return _window(today, today + timedelta(days=14))
    if _DATE_LIKE.search(digits):
        found = _from_dateparser(fold(text), now)
    return found or (UNKNOWN if kind == "unknown" else None)


def _from_dateparser(text: str, now: datetime) -> Any:
    """Month names and dates ("in march", "by december 15") via dateparser; the past is not an answer."""
    cleaned = re.sub(r"^(?:in|by|around|maybe|probably|for|on|en|para|el)\s+", "", text.strip(" .!?"))
    parser = DateDataParser(
        languages=["en", "es"], settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": now}
    )
    data = parser.get_date_data(cleaned) if cleaned else None
    if data is None or data.date_obj is None:
        return None
    found = data.date_obj.date()
    today = now.date()
    if found < today:
        return None
    if data.period == "month":
        start = found.replace(day=1)
        if start <= today:
            return _window(today, _month_end(today))
        return _value("date", start, _month_end(start), today)
    return _value("date", found, found, today)
