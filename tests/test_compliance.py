"""Calling hours in the lead's local time, consent and opt-out: the gate every contact passes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.compliance import gate as compliance
from bot.store.leads import lead_timezone
from bot.store.tables import Lead

HOURS = compliance.parse_hours("08:00-21:00")


@pytest.mark.parametrize("utc_hour,allowed", [(13, False), (2, True), (14, True), (3, False), (1, True)])
def test_window_in_chicago(utc_hour, allowed):
    now = datetime(2026, 1, 15, utc_hour, 30, tzinfo=UTC)  # Chicago is UTC-6 in January
    when = compliance.next_window([ZoneInfo("America/Chicago")], HOURS, now)
    assert (when == now) is allowed


def test_window_opens_at_eight_local():
    now = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 23:00 in Chicago (CDT, UTC-5)
    when = compliance.next_window([ZoneInfo("America/Chicago")], HOURS, now)
    assert when.astimezone(ZoneInfo("America/Chicago")).strftime("%H:%M") == "08:00"


def test_number_spanning_zones_must_be_inside_in_all_of_them():
    zones = [ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")]
    # 12:30 UTC = 08:30 New York but 05:30 Los Angeles: too early for one of them.
    now = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    when = compliance.next_window(zones, HOURS, now)
    assert when.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%H:%M") == "08:00"


def test_never_overlapping_hours_raise():
    zones = [ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")]  # 25 hours apart
    with pytest.raises(ValueError):
        compliance.next_window(zones, compliance.parse_hours("09:00-10:00"), datetime(2026, 1, 1, tzinfo=UTC))


def test_lead_time_zone_from_number():
    assert lead_timezone("+15125550100") == "America/Chicago"
    assert lead_timezone("+442079460018") == "Europe/London"


@pytest.mark.parametrize("text,expected", [
    ("STOP", True), ("stop", True), (" Stop. ", True), ("UNSUBSCRIBE", True), ("cancel", True), ("end", True),
    ("quit!", True), ("stopall", True), ("opt out", True), ("revoke", True),
    ("please stop texting me", True), ("remove me from your list", True),
    ("don't stop", False), ("stop by tomorrow", False), ("yes", False), ("", False), (None, False),
])
def test_opt_out_keywords(text, expected):
    assert compliance.is_opt_out(text) is expected


def test_gate_blocks_without_consent_and_after_opt_out(services):
    from bot.store.tables import OptOut

    lead = Lead(name="A", phone="+15125550100", channel="call", consent=False, timezone="America/Chicago")
    noon = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
    with services.sessions() as s:
        assert compliance.check(s, lead, "call", noon).reason == "no consent on record"
        lead.consent = True
        assert compliance.check(s, lead, "call", noon).allowed
        s.add(OptOut(phone="+15125550100", source="test"))
        s.flush()
        verdict = compliance.check(s, lead, "call", noon)
        assert not verdict.allowed and verdict.not_before is None and "opted out" in verdict.reason
