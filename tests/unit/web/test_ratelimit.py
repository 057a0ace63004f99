"""Fixed-window counters of the rate limiter, on a fake clock."""

from __future__ import annotations

import time

from server.web.ratelimit import LocalWindows, SharedWindows, parse_limits, windows_for


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
    assert windows_for("memory://").__class__ is LocalWindows
