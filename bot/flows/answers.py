"""Answer understanding shared by every channel: text or keypad digits -> a normalized value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from bot.flows.contacts import parse_email, parse_phone
from bot.flows.model import NOT_UNDERSTOOD, UNKNOWN, YES_NO_DIGITS, AnswerType, Choice, Step
from bot.flows.numbers import parse_money, parse_number
from bot.flows.timeframes import parse_timeframe, warm
from bot.flows.words import (
    NEGATIONS,
    OPT_OUT_FILLER,
    OPT_OUT_KEYWORDS,
    OPT_OUT_PHRASES,
    UNKNOWN_PHRASES,
    YES_NO,
    PhraseTable,
    table,
    tokens,
)

__all__ = [
    "NOT_UNDERSTOOD",
    "UNKNOWN",
    "is_opt_out",
    "parse",
    "parse_choice",
    "parse_email",
    "parse_for_step",
    "parse_phone",
    "parse_text",
    "parse_yes_no",
    "warm",
]


UNKNOWN_TABLE = table({UNKNOWN: UNKNOWN_PHRASES})
ORDINALS = {
    "first": 1,
    "1st": 1,
    "one": 1,
    "second": 2,
    "2nd": 2,
    "two": 2,
    "third": 3,
    "3rd": 3,
    "three": 3,
    "fourth": 4,
    "4th": 4,
    "four": 4,
    "fifth": 5,
    "5th": 5,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "primero": 1,
    "primera": 1,
    "uno": 1,
    "segundo": 2,
    "segunda": 2,
    "dos": 2,
    "tercero": 3,
    "tercera": 3,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
}
_NUMBER_LEAD = frozenset(
    {
        "number",
        "option",
        "press",
        "pressing",
        "the",
        "choice",
        "numero",
        "opcion",
        "la",
        "el",
        "one",
        "i",
        "pick",
        "choose",
        "select",
        "ill",
        "take",
        "go",
        "with",
    }
)
_SUBJECTS = frozenset("i im ive id we were my me its it he she they our mine".split())


def is_opt_out(
    text: str = "", digits: str = "", opt_out_digit: str | None = None, extra_words: Iterable[str] = ()
) -> bool:
    """True for STOP-style keywords (whole message), stop phrases anywhere, or the opt-out key."""
    if opt_out_digit and digits.strip() == opt_out_digit:
        return True
    words = tokens(text)
    core = " ".join(w for w in words if w not in OPT_OUT_FILLER)
    if core in OPT_OUT_KEYWORDS or core in {" ".join(tokens(w)) for w in extra_words}:
        return True
    return OPT_OUT_PHRASES.first(words) is not None


def _whole_number(words: list[str]) -> int | None:
    """1 for "1", "one", "number one", "option 1", "the first one"; None otherwise."""
    rest = [w for w in words if w not in _NUMBER_LEAD]
    if not rest and "one" in words:
        return 1
    if len(rest) == 1:
        word = rest[0]
        if word.isdigit():
            return int(word)
        return ORDINALS.get(word)
    return None


def parse_yes_no(text: str, digits: str = "") -> Any:
    """ "yes", "no", UNKNOWN or NOT_UNDERSTOOD; keypad 1 is yes and 2 is no."""
    if digits.strip():
        return YES_NO_DIGITS.get(digits.strip()[:1], NOT_UNDERSTOOD)
    words = tokens(text)
    if "mean" in words:
        # "no, I mean yes": the correction is the answer.
        last = len(words) - 1 - words[::-1].index("mean")
        if last and words[last - 1] == "i" and last + 1 < len(words):
            words = words[last + 1 :]
    number = _whole_number(words)
    if number in (1, 2):
        return YES_NO_DIGITS[str(number)]
    if words == ["know"]:
        return "no"  # Twilio often transcribes a short, lone "No." as "Know."
    hit = YES_NO.first(words)
    return hit[2] if hit else NOT_UNDERSTOOD


@lru_cache(maxsize=256)
def _choice_table(
    key: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...],
) -> tuple[PhraseTable, dict[str, str]]:
    """Phrase table over ids, labels and synonyms; plus single words for typo matching."""
    phrases = PhraseTable()
    single: dict[str, str] = {}
    for choice_id, labels, synonyms in key:
        for phrase in (choice_id.replace("_", " "), *labels, *synonyms):
            phrases.add(phrase, choice_id)
            words = tokens(phrase)
            if len(words) == 1 and len(words[0]) >= 5:
                single[words[0]] = choice_id
    return phrases, single


def _negated(words: list[str], start: int) -> bool:
    """A negation just before `start`; a leading "no" before "I'm ..." is an interjection, not one."""
    before = [w for w in words[max(0, start - 2) : start] if w in NEGATIONS]
    if before == ["no"] and words[start] in _SUBJECTS:
        return False
    return bool(before)


def parse_choice(text: str, digits: str = "", choices: Sequence[Choice] = ()) -> Any:
    """A choice id, UNKNOWN or NOT_UNDERSTOOD: by keypad digit, number, ordinal, label or synonym."""
    by_digit = {c.digit: c.id for c in choices if c.digit}
    if digits.strip():
        if by_digit:
            return by_digit.get(digits.strip(), NOT_UNDERSTOOD)
        position = int(digits) if digits.strip().isdigit() else 0
        return choices[position - 1].id if 0 < position <= len(choices) else NOT_UNDERSTOOD
    words = tokens(text)
    number = _whole_number(words)
    if number is not None:
        if by_digit:
            return by_digit.get(str(number), NOT_UNDERSTOOD)
        return choices[number - 1].id if 0 < number <= len(choices) else NOT_UNDERSTOOD
    phrases, single = _choice_table(tuple((c.id, c.labels, c.synonyms) for c in choices))
    best: tuple[int, int, str] | None = None
    for start, length, value in phrases.matches(words):
        if _negated(words, start):
            continue  # "not the owner" must not pick "owner"
        if best is None or length > best[1]:
            best = (start, length, value)
    if best:
        return best[2]
    if UNKNOWN_TABLE.first(words):
        return UNKNOWN
    for i, word in enumerate(words):
        if word in single or len(word) < 5 or _negated(words, i):
            continue  # exact words were tried above; this pass only forgives typos ("homeonwer")
        close = difflib.get_close_matches(word, single, n=1, cutoff=0.8)
        if close:
            return single[close[0]]
    return NOT_UNDERSTOOD


def parse_text(text: str, digits: str = "") -> Any:
    """Free text, trimmed; keypad digits are kept as typed."""
    value = (text or digits).strip()
    return " ".join(value.split()) if value else NOT_UNDERSTOOD


def parse(
    answer_type: AnswerType | str,
    text: str = "",
    digits: str = "",
    *,
    choices: Sequence[Choice] = (),
    language: str = "en",
    now: datetime | None = None,
    region: str = "US",
    current_phone: str | None = None,
) -> Any:
    """Parse one answer of `answer_type`; returns the normalized value, UNKNOWN or NOT_UNDERSTOOD."""
    kind = AnswerType(answer_type)
    text = text or ""
    digits = (digits or "").strip()
    if kind == AnswerType.YES_NO:
        if choices and not digits:
            extra = parse_choice(text, "", [Choice(c.id, None, (), c.synonyms, None) for c in choices])
            if extra in ("yes", "no"):
                return extra
        return parse_yes_no(text, digits)
    if kind == AnswerType.CHOICE:
        return parse_choice(text, digits, choices)
    if kind == AnswerType.TEXT:
        return parse_text(text, digits)
    if kind == AnswerType.EMAIL:
        return parse_email(text)
    if kind == AnswerType.PHONE:
        return parse_phone(text, digits, region, current_phone)
    if not text.strip() and not digits:
        return NOT_UNDERSTOOD
    if kind == AnswerType.NUMBER:
        value = parse_number(text, digits, language)
    elif kind == AnswerType.MONEY:
        value = parse_money(text, digits, language)
    else:
        value = parse_timeframe(text, language, now)
    return NOT_UNDERSTOOD if value is None else value


def parse_for_step(step: Step, text: str = "", digits: str = "", **options: Any) -> Any:
    """`parse` with the step's type and choices."""
    return parse(step.type, text, digits, choices=step.choices, **options)
