"""Geometry for the server-side SVG charts of the admin pages (no script, no CDN).

The template draws; this module only works out where things go, in the units of a fixed
``viewBox`` that the browser scales to the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from server.domain.usage import Bucket

WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 12, 52, 12, 30  # room for the axis labels (values on the right)
MAX_TICKS = 5


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # the full label, for the bar's tooltip


@dataclass(frozen=True)
class Tick:
    position: float  # y for the value axis, x for the category axis
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    right: float  # x of the plot's right edge
    top: int
    bottom: float  # y of the baseline
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]


def nice_ceiling(peak: int) -> tuple[int, int]:
    """The axis maximum and step for values up to ``peak``: steps of 1, 2 or 5 × 10ⁿ, at most
    :data:`MAX_TICKS` of them, so that gridlines fall on round numbers."""
    if peak <= 0:
        return 1, 1
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if step * MAX_TICKS >= peak:
                return -(-peak // step) * step, step
        magnitude *= 10


def bar_chart(
    values: Sequence[int],
    labels: Sequence[str],
    axis_labels: Sequence[str] | None = None,
    *,
    label_every: int = 1,
) -> BarChart:
    """Bars for ``values`` with their full ``labels`` (tooltips); every ``label_every``-th bar,
    counting back from the last, is labelled on the category axis with its ``axis_labels``."""
    short = axis_labels if axis_labels is not None else labels
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top_value, step = nice_ceiling(max(values, default=0))
    band = plot_w / max(len(values), 1)
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = plot_h * value / top_value
        bars.append(
            Bar(
                x=round(LEFT + i * band + band * 0.15, 2),
                y=round(TOP + plot_h - height, 2),
                width=round(band * 0.7, 2),
                height=round(height, 2),
                value=value,
                label=label,
            )
        )
    y_ticks = tuple(
        Tick(round(TOP + plot_h - plot_h * v / top_value, 2), str(v))
        for v in range(0, top_value + 1, step)
    )
    last = len(values) - 1
    x_ticks = tuple(
        Tick(round(LEFT + i * band + band / 2, 2), short[i])
        for i in range(len(values))
        if (last - i) % label_every == 0
    )
    return BarChart(
        WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, TOP, TOP + plot_h, tuple(bars), y_ticks, x_ticks
    )


def downloads_chart(series: Sequence[Bucket], *, weekly: bool) -> BarChart:
    """The dashboard's downloads: one bar per day (every fifth labelled) or per week."""
    return bar_chart(
        [b.downloads for b in series],
        [f"week of {day_label(b.starts_on)}" if weekly else long_day(b.starts_on) for b in series],
        [day_label(b.starts_on) for b in series],
        label_every=2 if weekly else 5,
    )


def day_label(day: date) -> str:
    """``4 May``: short, and the same on every platform (no ``%-d``)."""
    return f"{day.day} {day:%b}"


def long_day(day: date) -> str:
    """``Mon 4 May 2026``."""
    return f"{day:%a} {day.day} {day:%b %Y}"
