"""Daily download counts summed into weeks (Monday to Sunday)."""

from __future__ import annotations

from datetime import date, timedelta

from server.domain.usage import Bucket, weekly


def days(first: date, *counts: int) -> list[Bucket]:
    return [
        Bucket(first + timedelta(days=i), first + timedelta(days=i), n)
        for i, n in enumerate(counts)
    ]


def test_weeks_start_on_monday_and_a_partial_week_spans_only_its_days() -> None:
    sunday = date(2026, 5, 3)
    weeks = weekly(days(sunday, 1, 2, 0, 0, 0, 0, 0, 4, 8, 16))
    assert weeks == [
        Bucket(sunday, sunday, 1),  # only its Sunday is in the window
        Bucket(date(2026, 5, 4), date(2026, 5, 10), 6),
        Bucket(date(2026, 5, 11), date(2026, 5, 12), 24),
    ]


def test_no_days_no_weeks() -> None:
    assert weekly([]) == []
