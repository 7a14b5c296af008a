"""Working hours: on-shift checks in the rep's own zone, next shift start, and the roster format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handoff.shifts import parse_days, parse_hours, parse_windows


def hours(**days: str):  # noqa: ANN201 - WorkingHours
    """Parse an hours mapping that must be valid."""
    parsed, errors = parse_hours({"timezone": "America/Chicago", **days})
    assert not errors
    return parsed


def test_open_is_judged_on_the_reps_clock() -> None:
    h = hours(**{"mon-fri": "08:00-18:00"})
    # 13:59 UTC is 08:59 CDT (open); 12:59 UTC is 07:59 CDT (not yet).
    assert h.is_open(datetime(2024, 6, 4, 13, 59))
    assert not h.is_open(datetime(2024, 6, 4, 12, 59))
    # 23:30 UTC Friday is 18:30 CDT Friday: closed; Saturday is not listed.
    assert not h.is_open(datetime(2024, 6, 7, 23, 30, tzinfo=UTC))
    assert not h.is_open(datetime(2024, 6, 8, 16, 0))


def test_end_is_exclusive_and_midnight_end_works() -> None:
    h = hours(sat="20:00-24:00")
    assert h.is_open(datetime(2024, 6, 9, 4, 59))  # Sat 23:59 CDT
    assert not h.is_open(datetime(2024, 6, 9, 5, 0))  # Sun 00:00 CDT


def test_winter_time_shifts_the_utc_window() -> None:
    h = hours(**{"mon-fri": "08:00-18:00"})
    # In January Chicago is UTC-6, so 13:30 UTC is 07:30 local.
    assert not h.is_open(datetime(2024, 1, 9, 13, 30))
    assert h.is_open(datetime(2024, 1, 9, 14, 30))


def test_next_start_skips_to_the_next_working_day() -> None:
    h = hours(**{"mon-fri": "09:00-17:00"})
    friday_evening = datetime(2024, 6, 7, 23, 0)  # 18:00 CDT Friday
    assert h.next_start(friday_evening) == datetime(2024, 6, 10, 14, 0, tzinfo=UTC)  # Mon 09:00 CDT
    tuesday_morning = datetime(2024, 6, 4, 12, 0)  # 07:00 CDT
    assert h.next_start(tuesday_morning) == datetime(2024, 6, 4, 14, 0, tzinfo=UTC)


def test_next_start_across_dst_change() -> None:
    h = hours(sun="09:00-12:00")
    # Saturday 2024-03-09 is CST; the next Sunday 09:00 is already CDT (UTC-5).
    assert h.next_start(datetime(2024, 3, 9, 18, 0)) == datetime(2024, 3, 10, 14, 0, tzinfo=UTC)


def test_no_windows_means_no_next_start() -> None:
    assert hours().next_start(datetime(2024, 6, 4)) is None


@pytest.mark.parametrize(("key", "days"), [
    ("mon-fri", [0, 1, 2, 3, 4]), ("fri-mon", [4, 5, 6, 0]), ("sat,sun", [5, 6]), ("daily", list(range(7))),
])
def test_day_keys(key: str, days: list[int]) -> None:
    assert parse_days(key) == days


def test_windows_format() -> None:
    assert parse_windows("13:00-17:00, 08:00-12:00") == ((480, 720), (780, 1020))
    assert parse_windows(False) == ()  # YAML reads a bare `off` as false
    for bad in ("8-5", "09:00-09:00", "25:00-26:00", "08:00-12:00, 11:00-13:00"):
        with pytest.raises(ValueError):
            parse_windows(bad)


def test_parse_errors_are_collected() -> None:
    parsed, errors = parse_hours({"mon": "09:00-17:00", "mon-tue": "10:00-11:00", "funday": "09:00-10:00"})
    assert parsed is None
    assert errors == [
        (None, "required key 'timezone' not provided (e.g. America/Chicago)"),
        ("mon-tue", "day 'mon' is given more than once"),
        ("funday", "unknown day 'funday' (use mon, tue, wed, thu, fri, sat, sun)"),
    ]


def test_to_dict_folds_equal_days() -> None:
    h = hours(**{"mon-thu": "09:00-17:00", "fri": "09:00-17:00", "sun": "10:00-12:00"})
    assert h.to_dict() == {"timezone": "America/Chicago", "mon-fri": "09:00-17:00", "sun": "10:00-12:00"}
