"""Rate-limit windows in the database: counters that every process serving it shares.

The default storage of the rate limiter (server/web/ratelimit.py) when no
``VIGOR_RATE_LIMIT_STORAGE_URL`` is set: gunicorn's workers, and several machines on one
PostgreSQL, count every hit on one key in one row of ``throttle_windows``, so that a limit of 10
per minute means 10 however the hits are spread over processes (counters in each worker's memory
let through 10 per worker).

A hit is one statement in a transaction of its own, whatever the request's session is doing:
``INSERT … ON CONFLICT (key) DO UPDATE … RETURNING``, atomic on SQLite and PostgreSQL alike
(SQLite lets one writer in at a time; PostgreSQL locks the row). The update reopens a closed
window (counting from the hits offered, closing one period from now) or adds them to an open one,
and returns the count and closing time the caller decides on; several keys (a license and an
address, or a process's hits of the last second) go in one statement. Closed windows are deleted
at most once a ``sweep_interval`` per process, so the table holds about the keys seen in the last
period.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import cast

from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.exc import SQLAlchemyError

from server.db.engine import Database
from server.domain.models import ThrottleWindow

_WINDOWS = cast(Table, ThrottleWindow.__table__)
_KEY_LENGTH = 200  # the column's; a longer key is stored as its digest
_ROWS_PER_STATEMENT = 500  # well under SQLite's and PostgreSQL's limits on bound parameters
# Open a window, or count in the open one, or reopen a closed one; the same text on SQLite (3.35+)
# and PostgreSQL. In SET, ``w`` is the row as it was; ``excluded`` the row offered.
_UPSERT = """\
INSERT INTO throttle_windows AS w (key, closes_at, hits) VALUES {values}
ON CONFLICT (key) DO UPDATE SET
hits = CASE WHEN w.closes_at <= {mark} THEN excluded.hits ELSE w.hits + excluded.hits END,
closes_at = CASE WHEN w.closes_at <= {mark} THEN excluded.closes_at ELSE w.closes_at END
RETURNING key, hits, closes_at"""


class CounterStorageError(Exception):
    """The rate limiter's storage (the database, Redis…) could not count a hit."""


def stored_key(key: str) -> str:
    """``key`` itself, or a digest of it when it is longer than the column (an address a proxy
    sent can be anything)."""
    if len(key) <= _KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class DatabaseWindows:
    """Fixed-window counters in the ``throttle_windows`` table (the rate limiter's ``Windows``).

    Args:
        db: the database every serving process uses.
        clock: seconds since the epoch (a fake one in tests).
        sweep_interval: seconds between two deletions of closed windows by this process.
    """

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = 60.0,
    ) -> None:
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0
        self._statements: dict[int, str] = {}  # the upsert's text for so many keys
        dialect = db.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(
                f"rate limits in the database need SQLite or PostgreSQL, not {dialect}"
            )
        # One statement per transaction: PostgreSQL's autocommit saves BEGIN and COMMIT round
        # trips; pysqlite begins before the INSERT and commits when told.
        self._engine = (
            db.engine
            if dialect == "sqlite"
            else db.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def hit(self, key: str, period: int) -> tuple[int, float]:
        """Count one hit on ``key``; the window's count and when it closes."""
        return self.count([(key, period, 1)])[0]

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        """Add ``amount`` hits to each ``(key, period, amount)``'s window, in one statement;
        each window's count and when it closes.

        Raises:
            CounterStorageError: the database did not answer or refused.
        """
        now = self._clock()
        offered: dict[str, tuple[float, int]] = {}
        for key, period, amount in hits:
            stored = stored_key(key)
            amount += offered.get(stored, (0.0, 0))[1]
            offered[stored] = (now + period, amount)
        try:
            counted = self._upsert(offered, now)
        except SQLAlchemyError as exc:
            raise CounterStorageError(
                f"the database did not count: {exc.__class__.__name__}"
            ) from exc
        return [counted[stored_key(key)] for key, _, _ in hits]

    def _upsert(
        self, offered: dict[str, tuple[float, int]], now: float
    ) -> dict[str, tuple[int, float]]:
        counted: dict[str, tuple[int, float]] = {}
        # Sorted: two statements lock shared rows in the same order (no deadlock on PostgreSQL).
        keys = sorted(offered)
        with self._engine.connect() as conn:
            for start in range(0, len(keys), _ROWS_PER_STATEMENT):
                chunk = keys[start : start + _ROWS_PER_STATEMENT]
                params = [v for key in chunk for v in (key, *offered[key])] + [now, now]
                for key, total, closes_at in conn.exec_driver_sql(
                    self._sql(len(chunk)), tuple(params)
                ):
                    counted[key] = (int(total), float(closes_at))
                conn.commit()
            if now >= self._next_sweep:
                self._next_sweep = now + self._sweep_interval
                self._sweep(conn, now)
                conn.commit()
        return counted

    def _sql(self, rows: int) -> str:
        sql = self._statements.get(rows)
        if sql is None:
            mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
            sql = self._statements[rows] = _UPSERT.format(
                values=", ".join([f"({mark}, {mark}, {mark})"] * rows), mark=mark
            )
        return sql

    def sweep(self) -> int:
        """Delete every closed window now; how many were deleted."""
        with self._engine.connect() as conn:
            deleted = self._sweep(conn, self._clock())
            conn.commit()
        return deleted

    @staticmethod
    def _sweep(conn: Connection, now: float) -> int:
        # Rows another statement holds are left for a later sweep: waiting for them, in an order
        # of its own, could deadlock with a hit on two keys (PostgreSQL; SQLite has one writer).
        closed = (
            select(_WINDOWS.c.key)
            .where(_WINDOWS.c.closes_at <= now)
            .with_for_update(skip_locked=True)
        )
        return int(conn.execute(delete(_WINDOWS).where(_WINDOWS.c.key.in_(closed))).rowcount)
