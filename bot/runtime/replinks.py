"""Signed, opaque, expiring links that open one handoff's lead page for its rep, with no password.

The token carries only the handoff's random id (16 bytes) and a timestamp, signed with SECRET_KEY:
it says nothing about the lead, and it is short enough for a text message. Its age is read on
leadbot's clock, so tests move time instead of waiting a week; REP_LINK_HOURS sets the lifetime.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from bot.store import clock

SALT = "leadbot.rep-lead-link"
DEFAULT_MAX_AGE_S = 7 * 24 * 3600
PATH = "/console/r/"


class LinkError(ValueError):
    """The link is forged, damaged or expired; the message says which."""


class LinkExpired(LinkError):
    """The link was genuine but is older than its lifetime."""


class _ClockSigner(TimestampSigner):
    """Stamps and ages tokens on leadbot's clock (moved in tests, real time in production)."""

    issued: datetime | None = None

    def get_timestamp(self) -> int:
        at = self.issued or clock.now()
        return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def _signer(secret: str, issued: datetime | None = None) -> TimestampSigner:
    signer = _ClockSigner(secret, salt=SALT)
    signer.issued = issued
    return signer


def make_token(secret: str, handoff_id: str, issued: datetime | None = None) -> str:
    """A token for one handoff id (32 hex characters), stamped `issued` (naive = UTC) or now.

    Stamped with the handoff's creation, the text, the backup email and the reminder carry one link.
    """
    raw = base64.urlsafe_b64encode(bytes.fromhex(handoff_id)).rstrip(b"=")
    return _signer(secret, issued).sign(raw).decode()


def read_token(secret: str, token: str, max_age: int = DEFAULT_MAX_AGE_S) -> str:
    """The handoff id in a valid token; LinkError when forged, damaged or older than max_age."""
    try:
        raw = _signer(secret).unsign(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkExpired("this link has expired: ask your manager for the lead") from exc
    except BadSignature as exc:
        raise LinkError("this link is not valid") from exc
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)).hex()
    except (binascii.Error, ValueError) as exc:
        raise LinkError("this link is not valid") from exc


def rep_link(base_url: str, secret: str, handoff_id: str, issued: datetime | None = None) -> str:
    """The full URL a rep taps."""
    return f"{base_url.rstrip('/')}{PATH}{make_token(secret, handoff_id, issued)}"
