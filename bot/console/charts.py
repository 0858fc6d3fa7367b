"""Charts drawn on the server as SVG: nothing to download, nothing fetched at run time, readable
without JavaScript, and every bar a link to the cases it counts (the drill-down).

Each function returns markup (``markupsafe.Markup``) with every text escaped; the SVG scales to
its container (``viewBox`` and ``width: 100%``), so the same chart serves a phone and a desktop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    href: str
    color: str = "#1769aa"


def _nice_max(value: int) -> int:
    """A round upper bound for the axis (1, 2, 5 × 10ⁿ)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


def hbars(bars: Sequence[Bar], title: str) -> Markup:
    """Horizontal bars with their counts: the five rating levels, the workload."""
    row, label_w, width = 30, 92, 420
    height = row * len(bars) + 8
    top = _nice_max(max((b.value for b in bars), default=0))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'preserveAspectRatio="xMinYMin meet">', f"<title>{escape(title)}</title>"]
    for index, bar in enumerate(bars):
        y = 4 + index * row
        length = (width - label_w - 50) * bar.value / top
        parts.append(
            f'<a href="{escape(bar.href)}"><g class="bar">'
            f'<text x="{label_w - 6}" y="{y + 19}" text-anchor="end" font-size="14">{escape(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{max(length, 1.5):.1f}" height="20" rx="3" fill="{bar.color}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 19}" font-size="14">{bar.value}</text>'
            f"</g></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(bars: Sequence[Bar], title: str, every: int = 5) -> Markup:
    """Vertical columns over time (cases opened per day); a date label every ``every`` columns."""
    # A narrow canvas: on a phone the chart is drawn at about half of it, and the labels stay legible.
    width, height, left, bottom, top_pad = 480, 190, 34, 28, 12
    n = max(len(bars), 1)
    slot = (width - left - 4) / n
    top = _nice_max(max((b.value for b in bars), default=0))
    plot = height - bottom - top_pad
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'preserveAspectRatio="xMinYMin meet">', f"<title>{escape(title)}</title>"]
    for fraction in (0, 0.5, 1):
        y = top_pad + plot * (1 - fraction)
        parts.append(f'<line x1="{left}" x2="{width - 2}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>'
                     f'<text x="{left - 4}" y="{y + 5:.1f}" text-anchor="end" font-size="14" fill="#616e7c">'
                     f"{top * fraction:g}</text>")
    for index, bar in enumerate(bars):
        h = plot * bar.value / top
        x = left + index * slot
        parts.append(
            f'<a href="{escape(bar.href)}"><rect x="{x + slot * 0.15:.1f}" y="{top_pad + plot - h:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{max(h, 0.8):.1f}" fill="{bar.color}">'
            f"<title>{escape(bar.label)}：{bar.value}</title></rect></a>"
        )
        if index % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 8}" text-anchor="middle" font-size="14" '
                         f'fill="#616e7c">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def gauge(rate: float | None, title: str, href: str) -> Markup:
    """A rate as a ring (及时签收率, 按时办结率, 满意率); "—" when nothing was due."""
    radius, stroke = 34, 9
    circumference = 2 * 3.14159 * radius
    shown = "—" if rate is None else f"{rate * 100:.1f}%"
    arc = 0 if rate is None else circumference * max(0.0, min(rate, 1.0))
    color = "#9aa5b1" if rate is None else ("#2e7d32" if rate >= 0.9 else "#ef6c00" if rate >= 0.7 else "#c62828")
    return Markup(
        f'<a href="{escape(href)}" class="gauge"><svg viewBox="0 0 90 90" role="img" aria-label="{escape(title)} '
        f'{shown}"><title>{escape(title)}</title>'
        f'<circle cx="45" cy="45" r="{radius}" fill="none" stroke="#e4e7eb" stroke-width="{stroke}"/>'
        f'<circle cx="45" cy="45" r="{radius}" fill="none" stroke="{color}" stroke-width="{stroke}" '
        f'stroke-dasharray="{arc:.1f} {circumference:.1f}" transform="rotate(-90 45 45)"/>'
        f'<text x="45" y="50" text-anchor="middle" font-size="15" font-weight="600">{shown}</text></svg></a>'
    )
