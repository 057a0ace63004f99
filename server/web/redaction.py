"""Capability URLs out of logs: whoever holds a download or set-password link may use it, so the
token in one is replaced before a path reaches any log (the access log: ``server.serving``; the
error log: ``server.web.errors``)."""

from __future__ import annotations

import re

# Download links (the agents' and the portal's), and the set-password links of portal users and admins.
CAPABILITY_PATH = re.compile(
    r"(/(?:api/v1|portal)/download/|/(?:portal|admin)/set-password/)[^/?#\s\"]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` (a request line, path, referrer…) with the token of every capability URL hidden."""
    return CAPABILITY_PATH.sub(r"\1" + REDACTED, text)
