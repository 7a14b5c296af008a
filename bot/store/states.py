"""US states: names, time zones and ZIP prefixes, so a lead's stated state or ZIP maps to its rules."""

from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as pn_timezone

ET, CT, MT, PT = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"

# code: (name, every zone some part of the state keeps). A state split across zones lists each:
# the window must hold in all of them, so a lead there is never called early in the later one.
STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "AL": ("Alabama", (CT,)), "AK": ("Alaska", ("America/Anchorage", "America/Adak")),
    "AZ": ("Arizona", ("America/Phoenix",)), "AR": ("Arkansas", (CT,)), "CA": ("California", (PT,)),
    "CO": ("Colorado", (MT,)), "CT": ("Connecticut", (ET,)), "DE": ("Delaware", (ET,)),
    "DC": ("District of Columbia", (ET,)), "FL": ("Florida", (ET, CT)), "GA": ("Georgia", (ET,)),
    "HI": ("Hawaii", ("Pacific/Honolulu",)), "ID": ("Idaho", (MT, PT)), "IL": ("Illinois", (CT,)),
    "IN": ("Indiana", ("America/Indiana/Indianapolis", CT)), "IA": ("Iowa", (CT,)),
    "KS": ("Kansas", (CT, MT)), "KY": ("Kentucky", ("America/Kentucky/Louisville", CT)),
    "LA": ("Louisiana", (CT,)), "ME": ("Maine", (ET,)), "MD": ("Maryland", (ET,)),
    "MA": ("Massachusetts", (ET,)), "MI": ("Michigan", ("America/Detroit", CT)), "MN": ("Minnesota", (CT,)),
    "MS": ("Mississippi", (CT,)), "MO": ("Missouri", (CT,)), "MT": ("Montana", (MT,)),
    "NE": ("Nebraska", (CT, MT)), "NV": ("Nevada", (PT,)), "NH": ("New Hampshire", (ET,)),
    "NJ": ("New Jersey", (ET,)), "NM": ("New Mexico", (MT,)), "NY": ("New York", (ET,)),
    "NC": ("North Carolina", (ET,)), "ND": ("North Dakota", (CT, MT)), "OH": ("Ohio", (ET,)),
    "OK": ("Oklahoma", (CT,)), "OR": ("Oregon", (PT, MT)), "PA": ("Pennsylvania", (ET,)),
    "RI": ("Rhode Island", (ET,)), "SC": ("South Carolina", (ET,)), "SD": ("South Dakota", (CT, MT)),
    "TN": ("Tennessee", (CT, ET)), "TX": ("Texas", (CT, MT)), "UT": ("Utah", (MT,)),
    "VT": ("Vermont", (ET,)), "VA": ("Virginia", (ET,)), "WA": ("Washington", (PT,)),
    "WV": ("West Virginia", (ET,)), "WI": ("Wisconsin", (CT,)), "WY": ("Wyoming", (MT,)),
    "PR": ("Puerto Rico", ("America/Puerto_Rico",)),
}
BY_NAME = {name.lower(): code for code, (name, _) in STATES.items()}

# First three ZIP digits -> state (USPS prefix ranges; the few exceptions listed after their range win).
_ZIP3_RANGES = [
    (5, 5, "NY"), (6, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"), (30, 38, "NH"), (39, 49, "ME"),
    (50, 59, "VT"), (60, 69, "CT"), (70, 89, "NJ"), (100, 149, "NY"), (150, 196, "PA"), (197, 199, "DE"),
    (200, 200, "DC"), (201, 201, "VA"), (202, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"),
    (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 349, "FL"),
    (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"), (398, 399, "GA"), (400, 427, "KY"),
    (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"), (500, 528, "IA"), (530, 549, "WI"),
    (550, 567, "MN"), (569, 569, "DC"), (570, 577, "SD"), (580, 588, "ND"), (590, 599, "MT"),
    (600, 629, "IL"), (630, 658, "MO"), (660, 679, "KS"), (680, 693, "NE"), (700, 714, "LA"),
    (716, 729, "AR"), (730, 749, "OK"), (733, 733, "TX"), (750, 799, "TX"), (800, 816, "CO"),
    (820, 831, "WY"), (832, 838, "ID"), (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"),
    (885, 885, "TX"), (889, 898, "NV"), (900, 961, "CA"), (967, 968, "HI"), (970, 979, "OR"),
    (980, 994, "WA"), (995, 999, "AK"),
]


def state_code(text: str | None) -> str | None:
    """'FL', 'fl' or 'Florida' -> 'FL'; None when it names no state."""
    if not text:
        return None
    key = text.strip()
    if key.upper() in STATES:
        return key.upper()
    return BY_NAME.get(key.lower())


def state_for_zip(zip_code: str | None) -> str | None:
    """The state a US ZIP code (5 or 9 digits) belongs to, by its first three digits."""
    digits = "".join(ch for ch in (zip_code or "") if ch.isdigit())
    if len(digits) not in (5, 9):
        return None
    prefix, found = int(digits[:3]), None
    for low, high, code in _ZIP3_RANGES:
        if low <= prefix <= high:
            found = code  # later, narrower ranges override the broad one before them
    return found


def states_for_number(phone: str) -> list[str]:
    """Every state phonenumbers places the number in (its area code's state), or none outside the US."""
    number = phonenumbers.parse(phone)
    description = geocoder.description_for_number(number, "en")
    # US descriptions are 'Florida' or 'New York, NY': a state name, or a city and the state code.
    parts = [p.strip() for p in description.split(",")] if description else []
    found = [code for part in parts if (code := state_code(part)) is not None]
    return found[-1:] if found else []


def zones_for_number(phone: str) -> list[str]:
    """Every time zone phonenumbers gives for the number."""
    number = phonenumbers.parse(phone)
    return [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]


def zones_for_state(code: str) -> tuple[str, ...]:
    """The time zones of a state."""
    return STATES[code][1]
