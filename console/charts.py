"""Chart data for the reports page: speed-to-lead buckets and where a percentile falls among them.

The page draws the charts in the browser with the vendored Chart.js (console/static/vendor/) from
this data, which it embeds as JSON; the tables beside the charts carry the same numbers.
"""

from __future__ import annotations

from bisect import bisect_right

# Speed-to-lead buckets in seconds: fine where speed matters, coarse in the long tail.
BUCKETS = [0, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]


def _short(s: float) -> str:
    return f"{int(s)}s" if s < 60 else (f"{int(s // 60)}m" if s < 3600 else f"{int(s // 3600)}h")


def bucket_label(lo: float, hi: float | None) -> str:
    """'5–10s', '1–2m', '1h+'."""
    return f"{_short(lo)}+" if hi is None else f"{_short(lo)}–{_short(hi)}"


def histogram(values: list[float]) -> list[tuple[str, int]]:
    """Counts per speed-to-lead bucket."""
    counts = [0] * len(BUCKETS)
    for v in values:
        counts[max(bisect_right(BUCKETS, v) - 1, 0)] += 1
    return [
        (bucket_label(lo, BUCKETS[i + 1] if i + 1 < len(BUCKETS) else None), counts[i])
        for i, lo in enumerate(BUCKETS)
    ]


def position(value: float | None) -> float | None:
    """Where `value` seconds falls on the histogram's axis, in buckets: 2.5 is halfway through the third.

    The buckets are uneven, so a marker drawn at its bucket's share is where the value really is.
    The open last bucket puts every value at its middle.
    """
    if value is None:
        return None
    i = max(bisect_right(BUCKETS, value) - 1, 0)
    if i + 1 >= len(BUCKETS):
        return i + 0.5
    lo, hi = BUCKETS[i], BUCKETS[i + 1]
    return i + (value - lo) / (hi - lo)
