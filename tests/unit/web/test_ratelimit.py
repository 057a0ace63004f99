"""Fixed-window counters of the rate limiter, on a fake clock."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from server.config import ConfigError
from server.db import Database
from server.db.throttle import CounterStorageError, DatabaseWindows
from server.web.ratelimit import (
    BatchedWindows,
    LocalWindows,
    SharedWindows,
    parse_limits,
    windows_for,
)
from tests.common.live import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_opens_at_the_first_hit_and_counts_until_it_closes() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    assert windows.hit("k", 60) == (1, 1060.0)
    clock.now = 1059.0
    assert windows.hit("k", 60) == (2, 1060.0)
    clock.now = 1060.0  # closed: a new window opens with this hit
    assert windows.hit("k", 60) == (1, 1120.0)


def test_keys_are_counted_apart() -> None:
    windows = LocalWindows(Clock())
    windows.hit("a", 60)
    windows.hit("a", 60)
    assert windows.hit("b", 60)[0] == 1
    assert windows.hit("a", 60)[0] == 3


def test_closed_windows_are_swept_so_memory_follows_live_keys() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    for n in range(5000):
        windows.hit(f"old-{n}", 60)
    clock.now += 61
    for n in range(4000):  # the dict doubles past its last sweep: closed windows go
        windows.hit(f"new-{n}", 60)
    assert not any(key.startswith("old-") for key in windows._windows)
    assert windows.hit("new-0", 60)[0] == 2, "live windows survive a sweep"


def test_limits_parse_like_flask_limiter() -> None:
    items = parse_limits("120/minute;1000 per hour")
    assert [(i.amount, i.get_expiry()) for i in items] == [(120, 60), (1000, 3600)]


def test_shared_windows_count_through_a_limits_storage() -> None:
    windows = SharedWindows("memory://")  # the adapter Redis goes through, on limits' memory store
    first, closes_at = windows.hit("k", 60)
    assert first == 1
    assert time.time() < closes_at <= time.time() + 60
    assert windows.hit("k", 60) == (2, closes_at)
    [(k_count, k_closes), (j_count, _)] = windows.count([("k", 60, 1), ("j", 60, 1)])
    assert (k_count, k_closes, j_count) == (3, closes_at, 1)


def test_a_database_that_cannot_count_says_so_in_the_limiter_s_terms(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'vigor.db'}")  # not migrated: no throttle_windows
    with pytest.raises(CounterStorageError, match="the database did not count: OperationalError"):
        DatabaseWindows(db).hit("k", 60)
    db.dispose()


def test_the_storage_url_chooses_the_counters(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'vigor.db'}")
    assert isinstance(windows_for("", db), DatabaseWindows)
    assert isinstance(windows_for("memory://", db), LocalWindows)
    db.dispose()


@pytest.mark.parametrize(
    ("url", "told"),
    [
        ("nonsense", "unknown storage scheme"),
        ("memcached://127.0.0.1:1", "'pymemcache' prerequisite not available"),
        ("redis://:hunter2@127.0.0.1:{port}", "at redis://***@127.0.0.1:{port} does not answer"),
    ],
)
def test_a_storage_that_cannot_count_is_refused_in_one_line_at_startup(url: str, told: str) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError) as refused:
        SharedWindows(url.format(port=port))
    message = str(refused.value)
    assert message.startswith("VIGOR_RATE_LIMIT_STORAGE_URL: ")
    assert told.format(port=port) in message
    assert "\n" not in message
    assert "hunter2" not in message


def test_batched_windows_count_here_and_share_once_an_interval() -> None:
    """Two processes' batched counters over one shared store: each counts its own hits at once,
    and the other's at its next sync."""
    clock = Clock()
    shared = LocalWindows(clock)  # stands in for the database or Redis
    first = BatchedWindows(shared, interval=1.0, clock=clock)
    second = BatchedWindows(shared, interval=1.0, clock=clock)
    assert first.count([("k", 60, 1)]) == [(1, 1060.0)]  # the first hit syncs
    assert first.count([("k", 60, 1), ("k", 60, 1)]) == [(3, 1060.0), (3, 1060.0)]
    assert shared.hit("k", 60, 0) == (1, 1060.0), "not shared before the interval is up"
    clock.now += 0.5
    assert second.count([("k", 60, 1)]) == [(2, 1060.0)], "sees what the first shared"
    clock.now += 0.5
    assert first.count([("k", 60, 1)]) == [(5, 1060.0)], "its own 3, the second's 1, this 1"
    assert second.count([("k", 60, 1)]) == [(3, 1060.0)], "not its interval yet: 2 known + 1"
    clock.now += 0.5
    assert second.count([("k", 60, 1)]) == [(7, 1060.0)]
    assert shared.hit("k", 60, 0) == (7, 1060.0)


def test_batched_windows_start_over_when_the_shared_window_closes() -> None:
    clock = Clock()
    shared = LocalWindows(clock)
    windows = BatchedWindows(shared, interval=1.0, clock=clock)
    windows.count([("k", 60, 1)])
    clock.now += 60.5
    assert windows.count([("k", 60, 1)]) == [(1, 1120.5)]


class Unreachable:
    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        raise ConnectionError("the storage is down")


def test_hits_a_failed_sync_could_not_share_are_kept_for_the_next() -> None:
    clock = Clock()
    shared = LocalWindows(clock)
    windows = BatchedWindows(Unreachable(), interval=1.0, clock=clock)
    with pytest.raises(ConnectionError):
        windows.count([("k", 60, 1)])
    windows._shared = shared  # the storage is back
    assert windows.count([("k", 60, 1)]) == [(2, 1060.0)]
    assert shared.hit("k", 60, 0) == (2, 1060.0)
