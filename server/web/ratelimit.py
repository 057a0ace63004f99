"""Rate limits for update checks, reports and sign-in forms: fixed windows, 429 + Retry-After.

A limit such as ``120/minute`` (``limits`` syntax; several joined by ``;``) allows that many hits
per key in a window that opens at the key's first hit and lasts the period; further hits in the
window are refused with ``429`` and ``Retry-After`` (seconds until the window closes). Every
answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` for its tightest limit.

This replaced Flask-Limiter, which cost about 190 µs of an 850 µs update check (request hooks,
limit resolution, and a timer thread that the ``limits`` memory storage starts every 10 ms to
sweep every key). The rule is the same one (fixed window, a hit counted before the view runs).

Storage: ``memory://`` counts in the process (one worker, or tests); any other URL
(``redis://``...) goes through the ``limits`` storage for it, shared by every process.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app, make_response, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from werkzeug.exceptions import TooManyRequests

F = TypeVar("F", bound=Callable[..., Any])


class Windows(Protocol):
    """Fixed-window counters: count a hit, say the window's count and when it closes."""

    def hit(self, key: str, period: int) -> tuple[int, float]: ...


class LocalWindows:
    """Counters in this process: a dict of ``key -> [closes_at, count]``, swept lazily.

    No background thread: expired windows are dropped when the dict has doubled since the last
    sweep, so memory stays proportional to the keys seen within one period.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._sweep_at = 1024

    def hit(self, key: str, period: int) -> tuple[int, float]:
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[0] <= now:
                if len(self._windows) >= self._sweep_at:
                    self._sweep(now)
                window = self._windows[key] = [now + period, 0]
            window[1] += 1
            return int(window[1]), window[0]

    def _sweep(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
        self._sweep_at = max(1024, 2 * len(self._windows))


class SharedWindows:
    """Counters in a ``limits`` storage (Redis, Memcached...), shared by every process."""

    def __init__(self, url: str) -> None:
        self._storage: Storage = storage_from_string(url)  # type: ignore[assignment]

    def hit(self, key: str, period: int) -> tuple[int, float]:
        return self._storage.incr(key, period), self._storage.get_expiry(key)


def windows_for(url: str) -> Windows:
    return LocalWindows() if url.startswith("memory://") else SharedWindows(url)


@functools.lru_cache(maxsize=64)
def parse_limits(text: str) -> Sequence[RateLimitItem]:
    return tuple(parse_many(text))


@functools.lru_cache(maxsize=64)
def _windows_of(text: str) -> Sequence[tuple[int, int, str]]:
    """(amount, period in seconds, key suffix) of each limit in ``text``."""
    return tuple(
        (item.amount, item.get_expiry(), f"/{item.amount}/{item.get_expiry()}")
        for item in parse_limits(text)
    )


def remote_address() -> str:
    """The client address (the real one behind a proxy when ``ProxyFix`` is configured)."""
    return request.remote_addr or "127.0.0.1"


EXTENSION = "vigor.rate_limits"


def init_app(app: Flask, storage_url: str) -> None:
    app.extensions[EXTENSION] = windows_for(storage_url)


def rate_limited(
    limit: Callable[[], str],
    *keys: Callable[[], str],
    methods: Sequence[str] | None = None,
) -> Callable[[F], F]:
    """Limit a view to ``limit()`` hits per window for each key (default: the client address).

    Args:
        limit: the limit text, read per request (settings may differ between apps).
        keys: functions naming who is counted; each is limited separately.
        methods: only these methods are counted (all when None).
    """
    key_functions = keys or (remote_address,)

    def decorate(view: F) -> F:
        scope = f"{view.__module__}.{view.__qualname__}"  # two views never share a counter

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if methods is not None and request.method not in methods:
                return view(*args, **kwargs)
            headers = _hit(current_app.extensions[EXTENSION], limit(), scope, key_functions)
            response = make_response(view(*args, **kwargs))
            response.headers.update(headers)
            return response

        return wrapper  # type: ignore[return-value]

    return decorate


def _hit(
    windows: Windows, text: str, scope: str, key_functions: Sequence[Callable[[], str]]
) -> dict[str, str]:
    """Count one hit on every (limit, key); raise 429 when any is over; else the headers."""
    tightest: tuple[int, float, int] | None = None  # remaining, closes_at, amount
    refused_until = 0.0
    limits = _windows_of(text)
    for key_function in key_functions:
        prefix = f"vigor/{scope}/{key_function()}"
        for amount, period, suffix in limits:
            count, closes_at = windows.hit(prefix + suffix, period)
            remaining = max(0, amount - count)
            if count > amount:
                refused_until = max(refused_until, closes_at)
            if tightest is None or remaining < tightest[0]:
                tightest = (remaining, closes_at, amount)
    if refused_until:
        raise TooManyRequests(
            "too many requests; wait before trying again",
            retry_after=max(1, math.ceil(refused_until - time.time())),
        )
    assert tightest is not None
    remaining, closes_at, amount = tightest
    return {
        "X-RateLimit-Limit": str(amount),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(math.ceil(closes_at)),
    }
