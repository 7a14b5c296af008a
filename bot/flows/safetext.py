"""Text that is safe to put in XML (TwiML) and text messages: no C0 controls, no lone surrogates."""

from __future__ import annotations

import re

# XML 1.0 allows tab, LF and CR among the C0 controls and never U+FFFE/U+FFFF; a lone surrogate
# cannot even be encoded as UTF-8. One stray byte of these makes Twilio drop the whole call.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What a single-line field may not hold: every C0 control (tab and newline too), DEL and the above.
LINE_INVALID = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# What a free-text field (a message) may not hold: as above, but tab and line breaks are fine.
TEXT_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """The text without the characters XML 1.0 forbids (serialized TwiML stays well-formed)."""
    return XML_INVALID.sub("", text)


def bad_character(text: str, multiline: bool = False) -> str | None:
    """The first control character (or unencodable code point) in text, as U+XXXX, or None."""
    found = (TEXT_INVALID if multiline else LINE_INVALID).search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def strip_controls(text: str, multiline: bool = False) -> str:
    """The text without the characters bad_character() finds."""
    return (TEXT_INVALID if multiline else LINE_INVALID).sub("", text)
