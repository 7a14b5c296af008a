"""Territories: which US state, Canadian province, area code and country a phone number belongs to."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import geocoder

# phonenumbers' geocoder names places in English either as "Texas" or "Austin, TX";
# this table turns the full names back into the postal codes reps write in the roster.
STATE_CODES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR", "Guam": "GU", "U.S. Virgin Islands": "VI",
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Nova Scotia": "NS", "Northwest Territories": "NT",
    "Nunavut": "NU", "Ontario": "ON", "Prince Edward Island": "PE", "Quebec": "QC",
    "Saskatchewan": "SK", "Yukon": "YT",
}
KNOWN_CODES = frozenset(STATE_CODES.values())
_CITY_STATE = re.compile(r",\s*([A-Z]{2})$")

TERRITORY_HELP = "use a state/province code like TX, a 3-digit area code like 512, or a country code like +44"


def normalize_territory(value: object) -> str:
    """The canonical spelling of one roster territory; ValueError when it is none of the three kinds."""
    if isinstance(value, bool):
        # YAML 1.1 reads a bare ON (Ontario) as true.
        word = str(value).lower()
        raise ValueError(f"YAML read an unquoted ON/OFF/YES/NO as {word}; quote it, e.g. \"ON\"")
    text = str(value).strip()
    if re.fullmatch(r"[2-9]\d{2}", text):
        return text
    if re.fullmatch(r"\+\d{1,3}", text):
        return text
    if text.upper() in KNOWN_CODES and isinstance(value, str):
        return text.upper()
    raise ValueError(f"unknown territory '{text}' ({TERRITORY_HELP})")


def lead_territories(phone: str, default_region: str = "US") -> frozenset[str]:
    """Every territory key a phone number falls in: country code, area code and state, when known."""
    try:
        number = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException:
        return frozenset()
    keys = {f"+{number.country_code}"}
    if number.country_code == 1:
        # NANP: the first three national digits are the area code.
        keys.add(phonenumbers.national_significant_number(number)[:3])
        place = geocoder.description_for_number(number, "en")
        m = _CITY_STATE.search(place)
        if m:
            keys.add(m.group(1))
        elif place in STATE_CODES:
            keys.add(STATE_CODES[place])
    return frozenset(keys)
