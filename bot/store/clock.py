"""The one clock every rule and timestamp reads; tests move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """Aware UTC now, shifted by the test clock's offset (zero in production)."""
    return datetime.now(UTC) + _offset


def set_now(at: datetime | None) -> None:
    """Move the clock so that now() is `at` (aware) from this instant on; None puts it back."""
    global _offset
    _offset = timedelta(0) if at is None else at - datetime.now(UTC)


def advance(delta: timedelta) -> None:
    """Move the clock forward by `delta`."""
    global _offset
    _offset += delta


def shifted(real: datetime) -> datetime:
    """A wall-clock time (e.g. when Redis enqueued a job) on this clock."""
    return real + _offset
