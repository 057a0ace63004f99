"""Apply reports for the server: queued durably, sent best effort, resent on the next run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from client_agent.errors import AgentError, DownloadError
from client_agent.fetch import Fetcher
from client_agent.files import write_atomic

__all__ = [
    "ReportQueue",
]


class ReportQueue:
    """``state_dir/reports.json``: reports not yet delivered, oldest first."""

    def __init__(self, path: Path, max_pending: int) -> None:
        self.path = path
        self.max_pending = max_pending

    def pending(self) -> list[dict[str, Any]]:
        """Reports not yet delivered (an offline machine carries them in its status file)."""
        try:
            value = json.loads(self.path.read_text()) if self.path.exists() else []
        except (OSError, ValueError):
            value = []
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    def _write(self, pending: list[dict[str, Any]]) -> None:
        write_atomic(self.path, json.dumps(pending[-self.max_pending :]).encode())

    def add(self, report: Mapping[str, Any]) -> None:
        """Queue a report (durably, before any attempt to send it)."""
        self._write([*self.pending(), dict(report)])

    def flush(self, fetcher: Fetcher, url: str, headers: Mapping[str, str]) -> int:
        """Send what is queued; return how many were delivered. Never raises.

        Stops at the first network failure (the rest would fail the same way) and drops a
        report the server rejects as malformed (a 4xx other than 429: resending cannot help).
        """
        pending = self.pending()
        delivered = 0
        left: list[dict[str, Any]] = []
        for index, report in enumerate(pending):
            try:
                fetcher.post_json(url, report, headers, 65536)
                delivered += 1
            except DownloadError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                    continue  # rejected for good
                left = pending[index:]
                break
            except AgentError:
                left = pending[index:]  # e.g. the license was refused: keep for later
                break
        if left != pending:
            self._write(left)
        return delivered
