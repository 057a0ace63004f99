"""Geometry of the server-side SVG charts: round axis steps, bars in proportion, labels."""

from __future__ import annotations

from datetime import date

import pytest

from server.domain.usage import Bucket
from server.web.charts import HEIGHT, WIDTH, bar_chart, downloads_chart, nice_ceiling


@pytest.mark.parametrize(
    ("peak", "ceiling", "step"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (3, 3, 1),
        (5, 5, 1),
        (6, 6, 2),
        (12, 15, 5),
        (37, 40, 10),
        (240, 250, 50),
        (1001, 1500, 500),
    ],
)
def test_nice_ceiling(peak: int, ceiling: int, step: int) -> None:
    assert nice_ceiling(peak) == (ceiling, step)


def test_bars_stand_on_the_baseline_in_proportion() -> None:
    chart = bar_chart([0, 5, 10], ["a", "b", "c"])
    zero, half, full = chart.bars
    assert zero.height == 0 and zero.y == chart.bottom
    assert full.y == chart.top and full.y + full.height == chart.bottom
    assert half.height == pytest.approx(full.height / 2)
    assert all(chart.left <= b.x and b.x + b.width <= chart.right for b in chart.bars)
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8", "10"]
    assert (chart.width, chart.height) == (WIDTH, HEIGHT)


def test_every_nth_label_counting_back_from_the_last() -> None:
    chart = bar_chart(list(range(12)), [str(i) for i in range(12)], label_every=5)
    assert [t.label for t in chart.x_ticks] == ["1", "6", "11"]


def test_an_empty_series_draws_nothing_and_does_not_divide_by_zero() -> None:
    chart = bar_chart([], [])
    assert chart.bars == () and chart.x_ticks == ()


def test_downloads_chart_labels() -> None:
    days = [Bucket(date(2026, 5, d), date(2026, 5, d), d) for d in (3, 4)]
    chart = downloads_chart(days, weekly=False)
    assert [b.label for b in chart.bars] == ["Sun 3 May 2026", "Mon 4 May 2026"]
    assert [t.label for t in chart.x_ticks] == ["4 May"]
    week = downloads_chart([Bucket(date(2026, 5, 4), date(2026, 5, 10), 7)], weekly=True)
    assert week.bars[0].label == "week of 4 May"
