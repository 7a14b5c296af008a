"""After a Twilio request whose answer never came (a read timeout), find what Twilio may have created.

A timed-out create may or may not have reached Twilio. Placing it again could call or text the lead
twice; giving up could lose it. So the next try first lists the calls (or texts) to the number and
adopts one created since the attempt began, and only sends when there is none.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store import clock

SLACK = timedelta(seconds=5)  # Twilio's date_created has one-second resolution; clocks drift a little


def created_since(
    svc: Any, channel: str, to: str, since: datetime, known: Collection[str] = ()
) -> str | None:
    """The SID of a call or text to `to` from our number created at or after `since` (naive UTC on
    leadbot's clock), other than the `known` SIDs; None when Twilio has none (or for email)."""
    resource = {"call": svc.twilio.calls, "sms": svc.twilio.messages}.get(channel)
    if resource is None:
        return None
    # Twilio stamps real time; leadbot's clock may be moved (tests), so compare on Twilio's.
    real_since = since.replace(tzinfo=UTC) - (clock.now() - clock.real_now()) - SLACK
    for item in resource.list(to=to, from_=svc.settings.caller_id, limit=20):
        created = item.date_created
        if item.sid not in known and created is not None and created.astimezone(UTC) >= real_since:
            return item.sid
    return None
