"""Sizes and days as a reader says them, in the request's language (server/web/readable.py)."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask, g

from server.web.readable import day, size


@pytest.mark.parametrize(
    ("n", "language", "says"),
    [
        (None, "en", "—"),
        (0, "en", "0 bytes"),
        (999, "en", "999 bytes"),
        (14_693, "en", "14.3 KiB"),
        (14_693, "es", "14,3 KiB"),
        (209_715_200, "en", "200 MiB"),
        (8 * 1024**3, "es", "8 GiB"),
        (1536 * 1024**3, "en", "1.5 TiB"),
    ],
)
def test_sizes_are_readable_in_the_reader_s_language(
    n: int | None, language: str, says: str
) -> None:
    with Flask(__name__).test_request_context():
        g.language = language
        assert size(n) == says


def test_days_are_written_the_reader_s_way() -> None:
    with Flask(__name__).test_request_context():
        g.language = "es"
        assert day(date(2026, 3, 4)) == "4 mar 2026"
        g.language = "en"
        assert day(date(2026, 3, 4)) == "Mar 4, 2026"
