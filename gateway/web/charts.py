"""Server-side SVG charts: stacked daily volumes (import / export) with the median
clearance time as a line on its own axis. No JavaScript, prints and scales cleanly."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from gateway.services.monitoring import Day

WIDTH, HEIGHT = 880, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 20, 44


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return float(m * step)
    return float(10 * step)


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value < 120 else f"{value / 60:.0f}m"


def volume_chart(days: Sequence[Day]) -> Markup:
    """Bars of declarations per day (imports below exports), the clearance median above."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice(max((d.total for d in days), default=0))
    slow = _nice(max((d.median_clearance_s or 0 for d in days), default=0))
    slot = plot_w / max(1, len(days))
    bar = slot * 0.6
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="declarations per day and median clearance time" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">')
        parts.append(f"{top * i / 4:g}</text>")
        parts.append(f'<text class="axis time" x="{LEFT + plot_w + 6}" y="{y + 4}">')
        parts.append(f"{_seconds(slow * i / 4)}</text>")
    points = []
    for i, d in enumerate(days):
        x = LEFT + slot * i + (slot - bar) / 2
        y_import = plot_h * d.imports / top
        y_export = plot_h * d.exports / top
        base = TOP + plot_h
        median = d.median_clearance_s
        title = escape(
            f"{d.day:%Y-%m-%d}: {d.imports} import, {d.exports} export, {d.released} released"
            + (f", median clearance {_seconds(median)}" if median is not None else "")
        )
        parts.append(f"<g><title>{title}</title>")
        parts.append(
            f'<rect class="import" x="{x:.1f}" y="{base - y_import:.1f}" '
            f'width="{bar:.1f}" height="{y_import:.1f}"/>'
        )
        parts.append(
            f'<rect class="export" x="{x:.1f}" y="{base - y_import - y_export:.1f}" '
            f'width="{bar:.1f}" height="{y_export:.1f}"/></g>'
        )
        if d.total:
            parts.append(
                f'<text class="count" x="{x + bar / 2:.1f}" '
                f'y="{base - y_import - y_export - 4:.1f}" text-anchor="middle">{d.total}</text>'
            )
        if i % max(1, len(days) // 14) == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{base + 16}" '
                f'text-anchor="middle">{d.day:%m-%d}</text>'
            )
        if d.median_clearance_s is not None:
            cy = base - plot_h * d.median_clearance_s / slow
            points.append(f"{x + bar / 2:.1f},{cy:.1f}")
    if points:
        parts.append(f'<polyline class="clearance" points="{" ".join(points)}"/>')
        for p in points:
            cx, cy = p.split(",")
            parts.append(f'<circle class="clearance" cx="{cx}" cy="{cy}" r="3"/>')
    legend_y = HEIGHT - 8
    parts.append(
        f'<rect class="import" x="{LEFT}" y="{legend_y - 9}" width="10" height="10"/>'
        f'<text class="axis" x="{LEFT + 14}" y="{legend_y}">import 进口</text>'
        f'<rect class="export" x="{LEFT + 110}" y="{legend_y - 9}" width="10" height="10"/>'
        f'<text class="axis" x="{LEFT + 124}" y="{legend_y}">export 出口</text>'
        f'<line class="clearance" x1="{LEFT + 220}" x2="{LEFT + 240}" y1="{legend_y - 4}" '
        f'y2="{legend_y - 4}"/><text class="axis" x="{LEFT + 246}" y="{legend_y}">'
        "median clearance time 通关时长 (right axis)</text>"
    )
    parts.append("</svg>")
    # Numbers and escaped titles only: nothing user-supplied is inserted unescaped.
    return Markup("".join(parts))  # noqa: S704
