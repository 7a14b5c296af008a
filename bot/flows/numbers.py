"""Number and money answers: "a couple", "five grand", "$3,000-$5,000", "under 10k"."""

from __future__ import annotations

import re
from typing import Any

from price_parser import Price
from text_to_num import alpha2digit

from bot.flows.model import UNKNOWN
from bot.flows.words import UNKNOWN_PHRASES, fold, table, tokens

NOT_A_NUMBER = None

VAGUE = {
    "a couple of": "2",
    "a couple": "2",
    "couple of": "2",
    "a pair of": "2",
    "a few": "3",
    "few": "3",
    "several": "4",
    "half a dozen": "6",
    "a dozen": "12",
    "dozen": "12",
    "a hundred": "100",
    "a thousand": "1000",
    "a grand": "1000",
    "a million": "1000000",
    "un par de": "2",
    "unos": "",
}
SCALES = {
    "hh": 100,
    "k": 1_000,
    "thousand": 1_000,
    "grand": 1_000,
    "g": 1_000,
    "mil": 1_000,
    "thousands": 1_000,
    "hundred": 100,
    "hundreds": 100,
    "m": 1_000_000,
    "million": 1_000_000,
    "mm": 1_000_000,
    "millones": 1_000_000,
    "millon": 1_000_000,
}
CURRENCY_WORDS = {
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "usd": "USD",
    "$": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "€": "EUR",
    "eur": "EUR",
    "pesos": "MXN",
    "£": "GBP",
    "pounds": "GBP",
    "dolares": "USD",
}
_NUMBER = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<scale>"
    + "|".join(sorted(map(re.escape, SCALES), key=len, reverse=True))
    + r")?(?![a-z])"
)
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|to|and|or|through|a|y|o|hasta)\s*\$?\s*$")
_UNDER = re.compile(
    r"\b(?:under|less than|below|up to|no more than|not more than|at most|max(?:imum)?|"
    r"maximum of|menos de|hasta)\s*\$?\s*$"
)
_OVER = re.compile(
    r"\b(?:over|more than|above|at least|starting at|minimum(?: of)?|min|mas de|"
    r"no less than|upwards of)\s*\$?\s*$"
)
_PLUS_AFTER = re.compile(r"^\s*(?:\+|plus|or more|and up|or higher|and above|o mas)")
UNKNOWN_MONEY = table(
    {
        UNKNOWN: UNKNOWN_PHRASES + " | no budget | dont have a budget | no set budget | "
        "havent set a budget | not sure yet | whatever it costs | whatever it takes | "
        "need a quote | need an estimate | thats why im calling | you tell me"
    }
)
ZERO_MONEY = table({0: "nothing | zero | none | no money | cant afford | cant afford anything | nada"})


_DIGIT_SCALES = (
    # alpha2digit would turn a bare scale word into its own number ("5 thousand" -> "5 1000").
    (re.compile(r"(\d)\s*(?:thousands?|grand|mil)\b"), r"\1k"),
    (re.compile(r"(\d)\s*(?:millions?|millones|millon)\b"), r"\1m"),
    (re.compile(r"(\d)\s*hundreds?\b"), r"\1hh"),
)


def _prepare(text: str, language: str) -> str:
    """Folded text with number words turned into digits."""
    text = fold(text)
    for phrase, digits in VAGUE.items():
        text = re.sub(rf"\b{phrase}\b", digits, text)
    for pattern, replacement in _DIGIT_SCALES:
        text = pattern.sub(replacement, text)
    return alpha2digit(text, language if language in ("en", "es") else "en", threshold=0)


def _amounts(text: str) -> list[tuple[float, bool, int, int]]:
    """(value, had_scale, start, end) for each number in `text`."""
    found = []
    for m in _NUMBER.finditer(text):
        value = Price.fromstring(m.group("num")).amount_float
        if value is None:
            continue
        scale = m.group("scale")
        found.append((value * SCALES[scale] if scale else value, bool(scale), m.start(), m.end()))
    return found


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def _range(text: str) -> tuple[float, float | None] | None:
    """(low, high) from the first number or number range in `text`; high None means open-ended."""
    found = _amounts(text)
    if not found:
        return None
    low, low_scaled, start, end = found[0]
    if len(found) > 1 and _RANGE_JOIN.match(text[end : found[1][2]]):
        high, high_scaled = found[1][0], found[1][1]
        bare_high = _unscaled(text, found[1]) if high_scaled else _bare(high)
        if not low_scaled and low < bare_high < high:
            # "between 3 and 5 thousand": the scale of the second number applies to the first.
            low *= high / bare_high
        return (low, high) if low <= high else (high, low)
    before, after = text[:start], text[end:]
    if _UNDER.search(before):
        return 0.0, low
    if _OVER.search(before) or _PLUS_AFTER.match(after):
        return low, None
    return low, low


def _bare(value: float) -> float:
    """5000 -> 5: what "between 3 and five thousand" looks like after alpha2digit joined the scale."""
    for magnitude in (1_000_000, 1_000):
        if value >= magnitude and value % magnitude == 0:
            return value / magnitude
    return value


def _unscaled(text: str, found: tuple[float, bool, int, int]) -> float:
    m = _NUMBER.match(text, found[2])
    return Price.fromstring(m.group("num")).amount_float if m else 1.0


def _find(text: str, language: str) -> tuple[float, float | None] | None:
    """The first amount or range, trying the lead's language and then the other one we know."""
    for lang in dict.fromkeys((language, "en", "es")):
        found = _range(_prepare(text, lang))
        if found:
            return found
    return None


def parse_number(text: str, digits: str = "", language: str = "en") -> Any:
    """An int/float, UNKNOWN, or None when no number is there."""
    if digits.strip().isdigit():
        return int(digits.strip())
    words = tokens(text)
    found = _find(text, language)
    if not found and UNKNOWN_MONEY.first(words):
        return UNKNOWN
    if not found and ZERO_MONEY.first(words):
        return 0
    return _whole(found[0]) if found else NOT_A_NUMBER


def _currency(text: str, default: str) -> str:
    symbol = Price.fromstring(text).currency
    if symbol in CURRENCY_WORDS:
        return CURRENCY_WORDS[symbol]
    return next((CURRENCY_WORDS[w] for w in tokens(text) if w in CURRENCY_WORDS), default)


def parse_money(text: str, digits: str = "", language: str = "en", currency: str = "USD") -> Any:
    """{"min", "max", "currency"} (max None when open-ended), UNKNOWN, or None when not understood."""
    if digits.strip().isdigit():
        amount = int(digits.strip())
        return {"min": amount, "max": amount, "currency": currency}
    words = tokens(text)
    unknown, zero = UNKNOWN_MONEY.first(words), ZERO_MONEY.first(words)
    found = _find(text, language)
    if unknown and not found:
        return UNKNOWN
    if found is None:
        return {"min": 0, "max": 0, "currency": currency} if zero else NOT_A_NUMBER
    low, high = found
    return {
        "min": _whole(low),
        "max": None if high is None else _whole(high),
        "currency": _currency(text, currency),
    }
