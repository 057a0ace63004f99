"""Fixed-window counters of the rate limiter, on a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
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


def at_once(sync: Callable[[], None]) -> None:
    sync()


def test_batched_windows_count_here_and_share_once_an_interval() -> None:
    """Two processes' batched counters over one shared store: each counts its own hits at once,
    and the other's once its next sync is done."""
    clock = Clock()
    shared = LocalWindows(clock)  # stands in for the database or Redis
    first = BatchedWindows(shared, interval=1.0, clock=clock, start=at_once)
    second = BatchedWindows(shared, interval=1.0, clock=clock, start=at_once)
    assert first.count([("k", 60, 1)]) == [(1, 1060.0)]  # the first hit starts a sync
    assert shared.hit("k", 60, 0) == (1, 1060.0), "shared"
    assert first.count([("k", 60, 1), ("k", 60, 1)]) == [(3, 1060.0), (3, 1060.0)]
    assert shared.hit("k", 60, 0) == (1, 1060.0), "not shared before the interval is up"
    clock.now += 0.5
    assert second.count([("k", 60, 1)]) == [(1, 1060.5)], "knows nothing shared yet"
    assert second.count([("k", 60, 1)]) == [(3, 1060.0)], "its sync learnt the first's 1"
    clock.now += 0.5
    assert first.count([("k", 60, 1)]) == [(4, 1060.0)], "its own 3 and this 1"
    assert first.count([("k", 60, 0)]) == [(5, 1060.0)], "and the first the second shared"
    assert second.count([("k", 60, 1)]) == [(4, 1060.0)], "not its interval yet: 3 known + 1"
    clock.now += 0.5
    assert second.count([("k", 60, 1)]) == [(5, 1060.0)]
    assert shared.hit("k", 60, 0) == (8, 1060.0)


def test_batched_windows_start_over_when_the_shared_window_closes() -> None:
    clock = Clock()
    shared = LocalWindows(clock)
    windows = BatchedWindows(shared, interval=1.0, clock=clock, start=at_once)
    windows.count([("k", 60, 1)])
    clock.now += 60.5
    assert windows.count([("k", 60, 1)]) == [(1, 1120.5)]


class Unreachable:
    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        raise CounterStorageError("the storage is down")


def test_hits_a_failed_sync_could_not_share_are_logged_and_kept_for_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    shared = LocalWindows(clock)
    windows = BatchedWindows(Unreachable(), interval=1.0, clock=clock, start=at_once)
    assert windows.count([("k", 60, 1)]) == [(1, 1060.0)], "counted here all the same"
    assert "rate-limit hits not shared (kept for the next sync): the storage is down" in caplog.text
    windows._shared = shared  # the storage is back
    assert windows.count([("k", 60, 1)]) == [(2, 1060.0)], "not its interval yet"
    clock.now += 1.0
    assert windows.count([("k", 60, 1)]) == [(3, 1061.0)], "no shared window known yet"
    assert shared.hit("k", 60, 0) == (3, 1061.0), "the failed sync's hit shared too"


class Slow:
    """A shared storage that answers when told to."""

    def __init__(self, clock: Clock) -> None:
        self.inner = LocalWindows(clock)
        self.go_on = threading.Event()
        self.asked = threading.Event()

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        self.asked.set()
        assert self.go_on.wait(10)
        return self.inner.count(hits)


def test_no_hit_waits_for_a_sync_and_none_is_lost_while_one_runs() -> None:
    clock = Clock()
    slow = Slow(clock)
    windows = BatchedWindows(slow, interval=1.0, clock=clock)  # syncs on a thread of their own
    assert windows.count([("k", 60, 1)]) == [(1, 1060.0)]
    assert slow.asked.wait(10), "a sync started"
    clock.now += 2.0  # due again, but one sync at a time
    assert windows.count([("k", 60, 1)]) == [(2, 1062.0)], "answered while the sync waits"
    assert windows.count([("k", 60, 1)]) == [(3, 1062.0)]
    slow.go_on.set()  # the shared window opens now, as the first sync reaches it
    wait_for_sync(windows)
    clock.now += 1.0
    assert windows.count([("k", 60, 1)]) == [(4, 1062.0)], "1 shared, 2 since, this 1"
    wait_for_sync(windows)  # the next sync, started by that hit
    assert slow.inner.hit("k", 60, 0) == (4, 1062.0), "every hit shared, none twice"
    assert windows.count([("k", 60, 0)]) == [(4, 1062.0)]


def wait_for_sync(windows: BatchedWindows) -> None:
    assert windows.idle(10), "the sync never ended"


def test_closed_batched_windows_wait_for_their_sync_and_start_no_other() -> None:
    """Closed before the storage goes away: no sync may use it after."""
    clock = Clock()
    slow = Slow(clock)
    windows = BatchedWindows(slow, interval=1.0, clock=clock)
    windows.count([("k", 60, 1)])
    assert slow.asked.wait(10)
    closing = threading.Thread(target=windows.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive(), "waits for the sync under way"
    slow.go_on.set()
    closing.join(10)
    assert not closing.is_alive()
    assert slow.inner.hit("k", 60, 0)[0] == 1
    slow.asked.clear()
    clock.now += 5.0
    assert windows.count([("k", 60, 1)]) == [(2, 1060.0)], "still counted here"
    assert not slow.asked.wait(0.2), "no sync started"
    assert slow.inner.hit("k", 60, 0)[0] == 1


def test_when_no_thread_can_start_the_request_shares_the_counts_itself() -> None:
    def no_thread(_sync: Callable[[], None]) -> None:
        raise RuntimeError("can't start new thread")

    clock = Clock()
    shared = LocalWindows(clock)
    windows = BatchedWindows(shared, interval=1.0, clock=clock, start=no_thread)
    assert windows.count([("k", 60, 1)]) == [(1, 1060.0)]
    assert shared.hit("k", 60, 0) == (1, 1060.0), "shared all the same"
    clock.now += 1.0
    assert windows.count([("k", 60, 1)]) == [(2, 1060.0)], "and the next sync starts too"
    assert shared.hit("k", 60, 0) == (2, 1060.0)
