"""Capability tokens never reach a log line."""

from __future__ import annotations

import pytest

from server.web.redaction import redact


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        (
            "GET /api/v1/download/WzEsMTIsMF0.aw09gw.tpcG HTTP/1.1",
            "GET /api/v1/download/[redacted] HTTP/1.1",
        ),
        ("/portal/set-password/WzIsImUz.x_gU?lang=es", "/portal/set-password/[redacted]?lang=es"),
        (
            "http://h/api/v1/download/abc http://h/portal/set-password/def",
            "http://h/api/v1/download/[redacted] http://h/portal/set-password/[redacted]",
        ),
        ("/admin/set-password/WzMsIm.Ab-c", "/admin/set-password/[redacted]"),
        ("/portal/download/eyJhIjo.x-Y_z", "/portal/download/[redacted]"),
        ("GET /portal/licenses/3/ HTTP/1.1", "GET /portal/licenses/3/ HTTP/1.1"),
        ("/api/v1/check", "/api/v1/check"),
    ],
)
def test_tokens_are_redacted_and_nothing_else(line: str, logged: str) -> None:
    assert redact(line) == logged
