"""The one clock every rule and timestamp reads; tests move it instead of sleeping.

Two ways to move it: `set_now`/`advance` in this process (unit tests), and `LEADBOT_CLOCK_FILE`, a
file holding an offset in seconds that every process with it in its environment (gunicorn and the
workers) reads, so an end-to-end test can travel to "tomorrow 10:00 in the lead's zone". The file is
ignored with LEADBOT_ENV=production.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

_offset = timedelta(0)
_ENV = "LEADBOT_CLOCK_FILE"
# (path, mtime_ns, offset): the file is read again only when it changes (one stat per call).
_cache: tuple[str, int, float] | None = None


def _file_offset() -> float:
    """Seconds the clock file adds (0 without one)."""
    global _cache
    path = os.environ.get(_ENV)
    if not path or os.environ.get("LEADBOT_ENV") == "production":
        return 0.0
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return 0.0
    if _cache is not None and _cache[0] == path and _cache[1] == mtime:
        return _cache[2]
    try:
        offset = float(Path(path).read_text().strip() or 0)
    except (OSError, ValueError):
        offset = 0.0
    _cache = (path, mtime, offset)
    return offset


def _shift() -> timedelta:
    return _offset + timedelta(seconds=_file_offset())


def now() -> datetime:
    """Aware UTC now, shifted by the test clock's offset (zero in production)."""
    return datetime.now(UTC) + _shift()


def utcnow() -> datetime:
    """Naive UTC now (how the tables store time) on this clock."""
    return now().replace(tzinfo=None)


def real_now() -> datetime:
    """Aware UTC now, never moved (for RQ's scheduler, which runs on real time)."""
    return datetime.now(UTC)


def set_now(at: datetime | None) -> None:
    """Move the clock so that now() is `at` (aware) from this instant on; None puts it back."""
    global _offset
    _offset = timedelta(0) if at is None else at - datetime.now(UTC) - timedelta(seconds=_file_offset())


def advance(delta: timedelta) -> None:
    """Move the clock forward by `delta`."""
    global _offset
    _offset += delta


def shifted(real: datetime) -> datetime:
    """A wall-clock time (e.g. when Redis enqueued a job) on this clock."""
    return real + _shift()


def travel(path: str | Path, to: datetime) -> None:
    """Write the clock file so that now() reads `to` in every process using it, from this instant on."""
    target = to if to.tzinfo else to.replace(tzinfo=UTC)
    tmp = Path(f"{path}.tmp")
    tmp.write_text(repr((target - datetime.now(UTC)).total_seconds()))
    os.replace(tmp, path)  # atomic: a reader never sees half a number
