"""Rate-limit windows in the database (server/db/throttle.py), on SQLite and PostgreSQL: fixed
windows on a fake clock, exact counts under concurrent hits from many connections, and sweeping."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from server.db import Database
from server.db.throttle import DatabaseWindows
from server.domain.models import ThrottleWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _rows(db: Database) -> dict[str, tuple[int, float]]:
    with db.sessions() as session:
        return {w.key: (w.hits, w.closes_at) for w in session.scalars(select(ThrottleWindow))}


def test_a_window_opens_at_the_first_hit_counts_and_reopens_once_closed(db: Database) -> None:
    clock = Clock()
    windows = DatabaseWindows(db, clock)
    assert windows.hit("k", 60) == (1, 1_000_060.0)
    clock.now += 59
    assert windows.hit("k", 60) == (2, 1_000_060.0)
    clock.now += 1  # closed: this hit opens a new window
    assert windows.hit("k", 60) == (1, 1_000_120.0)
    assert _rows(db) == {"k": (1, 1_000_120.0)}


def test_one_statement_counts_several_keys_apart(db: Database) -> None:
    clock = Clock()
    windows = DatabaseWindows(db, clock)
    windows.hit("license:a", 60)
    assert windows.count([("license:a", 60, 1), ("address:b", 3600, 1)]) == [
        (2, 1_000_060.0),
        (1, 1_003_600.0),
    ]
    # A process's hits since its last sync (BatchedWindows) are added at once.
    assert windows.count([("license:a", 60, 5), ("license:a", 60, 2)]) == [(9, 1_000_060.0)] * 2


def test_a_key_longer_than_the_column_is_stored_as_its_digest(db: Database) -> None:
    windows = DatabaseWindows(db, Clock())
    long_key = "address:" + "x" * 500
    windows.hit(long_key, 60)
    assert windows.hit(long_key, 60)[0] == 2
    (stored,) = _rows(db)
    assert stored.startswith("sha256:")
    assert len(stored) < 200


def test_hits_from_many_connections_at_once_are_each_counted_once(db: Database) -> None:
    """What several workers do: every count from 1 to the total is handed out exactly once."""
    windows = DatabaseWindows(db)
    seen: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def hammer() -> None:
        start.wait()
        for _ in range(20):
            count, _closes = windows.hit("shared", 60)
            with lock:
                seen.append(count)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 121))


def test_closed_windows_are_swept_and_open_ones_kept(db: Database) -> None:
    clock = Clock()
    windows = DatabaseWindows(db, clock, sweep_interval=300)
    windows.hit("old", 60)  # the first hit sweeps (nothing yet), the next sweep is in 300 s
    windows.hit("long", 3600)
    clock.now += 120
    windows.hit("new", 60)  # no sweep before 300 s: the closed window stays meanwhile
    assert set(_rows(db)) == {"old", "long", "new"}
    clock.now += 200
    windows.hit("new", 3600)  # past 300 s: this hit sweeps what has closed
    assert set(_rows(db)) == {"long", "new"}
    clock.now += 3600
    assert windows.sweep() == 2
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ThrottleWindow)) == 0
