"""Sizes and days as a reader says them, in the request's language."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask, g

from server.web.i18n import human_date, human_size


@pytest.mark.parametrize(
    ("size", "language", "says"),
    [
        (0, "en", "0 byte"),
        (999, "en", "999 byte"),
        (14_693, "en", "14.7 kB"),
        (14_693, "es", "14,7 kB"),
        (209_715_200, "en", "209.7 MB"),
        (8 * 1024**3, "es", "8,6 GB"),
    ],
)
def test_sizes_are_readable_in_the_reader_s_language(size: int, language: str, says: str) -> None:
    with Flask(__name__).test_request_context():
        g.language = language
        assert human_size(size).startswith(says)


def test_days_are_written_the_reader_s_way() -> None:
    with Flask(__name__).test_request_context():
        g.language = "es"
        assert human_date(date(2026, 3, 4)) == "4 mar 2026"
        g.language = "en"
        assert human_date(date(2026, 3, 4)) == "Mar 4, 2026"
