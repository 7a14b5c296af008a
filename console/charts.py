"""Charts as server-rendered SVG (no chart library, nothing loaded from the internet); all text escaped."""

from __future__ import annotations

from bisect import bisect_right

from markupsafe import Markup, escape

# Speed-to-lead buckets in seconds: fine where speed matters, coarse in the long tail.
BUCKETS = [0, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]
COLORS = ["#123c69", "#0b7a75", "#b45309", "#7c3aed", "#be123c", "#475569", "#15803d"]


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


def _bucket_of(value: float | None) -> int | None:
    if value is None:
        return None
    return max(bisect_right(BUCKETS, value) - 1, 0)


def histogram_svg(
    title: str, bins: list[tuple[str, int]], p50: float | None, p90: float | None, color: str = COLORS[0]
) -> Markup:
    """A bar chart of the buckets (from `histogram`), with the p50 and p90 buckets marked."""
    total = sum(n for _, n in bins)
    width, height, pad, top = 480, 210, 28, 44
    bar_w = (width - 2 * pad) / len(bins)
    peak = max((n for _, n in bins), default=0) or 1
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" role="img" class="chart" data-points="{total}" '
        f'aria-label="{escape(title)}: {total} leads, p50 {_fmt(p50)}, p90 {_fmt(p90)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, n) in enumerate(bins):
        h = (height - top - pad) * n / peak
        x, y = pad + i * bar_w, height - pad - h
        parts.append(
            f'<rect class="bar" x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {n}</title></rect>'
        )
        if n:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{n}</text>')
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - pad + 15}" text-anchor="middle">'
            f"{escape(_short(BUCKETS[i]) if i + 1 < len(BUCKETS) else label)}</text>"
        )
    for name, value, dash in (("p50", p50, "4 3"), ("p90", p90, "1 3")):
        b = _bucket_of(value)
        if b is None:
            continue
        x = pad + (b + 0.5) * bar_w
        legend_y = 14 if name == "p50" else 30
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - pad}" stroke="#b42318" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
            # The legend sits in the top-right corner, clear of the bars' counts.
            f'<line x1="{width - 130}" x2="{width - 110}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            f'stroke="#b42318" stroke-width="2" stroke-dasharray="{dash}"/>'
            f'<text x="{width - 104}" y="{legend_y}" fill="#b42318">{name} {_fmt(value)}</text>'
        )
    parts.append(
        f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" stroke="#9aa3b2"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_svg(stages: list[tuple[str, int]]) -> Markup:
    """Horizontal bars for the funnel's stages, each with its share of submitted."""
    width, row = 520, 30
    total = stages[0][1] if stages else 0
    parts = [
        f'<svg viewBox="0 0 {width} {row * len(stages) + 10}" role="img" class="chart" '
        f'data-points="{total}" aria-label="Funnel: {total} leads submitted"><title>Funnel</title>'
    ]
    for i, (name, n) in enumerate(stages):
        w = (width - 240) * (n / total if total else 0)
        y = i * row + 5
        share = f"{100 * n / total:.0f}%" if total else "—"
        parts.append(
            f'<text x="0" y="{y + 18}">{escape(name)}</text>'
            f'<rect class="bar" x="110" y="{y}" width="{max(w, 1):.1f}" height="{row - 8}" '
            f'fill="{COLORS[i % len(COLORS)]}"><title>{escape(name)}: {n}</title></rect>'
            f'<text x="{116 + w:.1f}" y="{y + 18}">{n} ({share})</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.1f}m"
