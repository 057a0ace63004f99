"""When the agent may contact the server: the check interval with jitter, and ``Retry-After``.

A ``429`` answer's ``Retry-After`` (plus a little jitter, so that agents do not all return at
once) is kept in ``state.json`` as ``not_before``: until then no command contacts the server,
across runs, and the ``run`` loop sleeps at least that long. A successful check clears it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from client_agent.errors import DownloadError, RateLimitedError
from client_agent.state import StateStore

__all__ = [
    "Schedule",
]


class Schedule:
    """The check interval and the server's persisted "not before".

    Args:
        state: ``state.json``, where ``not_before`` is kept.
        clock: the current time (UTC).
        interval: seconds between checks.
        jitter: the fraction of ``interval`` a delay may be off by, either way.
    """

    def __init__(
        self, state: StateStore, clock: Callable[[], datetime], interval: float, jitter: float
    ) -> None:
        self.state = state
        self.clock = clock
        self.interval = interval
        self.jitter = jitter

    def refuse_if_asked(self) -> None:
        """Refuse to contact the server before the time it asked for.

        Raises:
            DownloadError: the server's ``not_before`` has not come yet.
        """
        not_before = self.state.get("not_before")
        if not_before and datetime.fromisoformat(not_before) > self.clock():
            raise DownloadError(
                f"the server asked not to be contacted before {not_before}; try again later",
                retryable=False,
            )

    def remember(self, exc: RateLimitedError) -> DownloadError:
        """Persist the server's Retry-After (a little jitter, so agents do not return at once).

        Returns:
            The error to raise instead, which says until when the agent waits.
        """
        wait = (exc.retry_after if exc.retry_after is not None else 60.0) * random.uniform(1, 1.1)  # noqa: S311
        until = self.clock() + timedelta(seconds=wait)
        self.state.set("not_before", until.isoformat(timespec="seconds"))
        return DownloadError(
            f"the server is busy and asked to wait {wait:.0f} s (until {until:%Y-%m-%d %H:%M:%S} UTC)",
            status=429,
            retryable=False,
        )

    def answered(self) -> None:
        """The server answered a check: forget any earlier "not before"."""
        if self.state.get("not_before"):
            self.state.set("not_before", None)

    def next_delay(self) -> float:
        """Seconds to the next check: the interval with random jitter, and never before the
        time the server asked for (Retry-After, persisted across runs)."""
        delay = self.interval * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311
        not_before = self.state.get("not_before")
        if not_before:
            wait = (datetime.fromisoformat(not_before) - self.clock()).total_seconds()
            delay = max(delay, wait)
        return delay
