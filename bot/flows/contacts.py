"""Contact-detail answers: email addresses and phone numbers, typed or spoken."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.flows.model import NOT_UNDERSTOOD, UNKNOWN
from bot.flows.words import UNKNOWN_PHRASES, fold, table, tokens

UNKNOWN_TABLE = table({UNKNOWN: UNKNOWN_PHRASES})
DIGIT_WORDS = dict(
    zip(
        "zero oh o one two three four five six seven eight nine "
        "cero uno dos tres cuatro cinco seis siete ocho "
        "nueve".split(),
        "0 0 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9".split(),
        strict=True,
    )
)
_EMAIL_LEADS = frozenset("is its it email e-mail mail address es correo my mi".split())
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPOKEN_EMAIL = (
    (r"\s+(?:at|arroba)\s+", "@"),
    (r"\s+(?:dot|punto)\s+", "."),
    (r"\s*underscore\s*", "_"),
    (r"\s*(?:dash|hyphen)\s*", "-"),
    (r"\s*@\s*", "@"),
    (r"\s*\.\s*", "."),
)
_SAME_NUMBER = table(
    {
        "same": "same | same number | this number | this one | the one you called | "
        "the same one | este | este numero | el mismo"
    }
)


def parse_email(text: str) -> Any:
    """A normalized address; spoken forms ("john dot smith at gmail dot com") are rebuilt first."""
    spoken = fold(text).strip(" .!?")
    for pattern, replacement in _SPOKEN_EMAIL:
        spoken = re.sub(pattern, replacement, spoken)
    if "@" in spoken:
        # Spoken local parts arrive in pieces ("john smith 42 at ..."): join the words after the lead-in.
        local, _, domain = spoken.partition("@")
        words = local.split()
        cut = max((i + 1 for i, w in enumerate(words) if w in _EMAIL_LEADS), default=0)
        spoken = "".join(words[cut:]) + "@" + domain.split()[0] if domain.split() else spoken
    found = _EMAIL.search(spoken)
    if not found:
        return UNKNOWN if UNKNOWN_TABLE.first(tokens(text)) else NOT_UNDERSTOOD
    try:
        return validate_email(found.group(0).strip("."), check_deliverability=False).normalized
    except EmailNotValidError:
        return NOT_UNDERSTOOD


def parse_phone(text: str, digits: str = "", region: str = "US", current: str | None = None) -> Any:
    """An E.164 number; "same number" gives `current`."""
    words = tokens(text)
    if current and not digits and _SAME_NUMBER.first(words):
        return current
    spoken = digits or " ".join(DIGIT_WORDS.get(w, w) for w in tokens(text, dedupe=False))
    raw = re.sub(r"[^\d]", "", spoken)
    raw = "+" + raw if text.strip().startswith("+") else raw
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return NOT_UNDERSTOOD
    if not phonenumbers.is_valid_number(number):
        return NOT_UNDERSTOOD
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
