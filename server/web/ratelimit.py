"""Rate limits for update checks, reports and sign-in forms: fixed windows, 429 + Retry-After.

A limit such as ``120/minute`` (``limits`` syntax; several joined by ``;``) allows that many hits
per key in a window that opens at the key's first hit and lasts the period; further hits in the
window are refused with ``429`` and ``Retry-After`` (seconds until the window closes). Every
answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` for its tightest limit.

A view names who is counted against which limit (:class:`Per`): the client address, a license,
the account a sign-in form names. Each is counted and refused apart, so that guesses against one
account are limited however many addresses they come from.

This replaced Flask-Limiter, which cost about 190 µs of an 850 µs update check (request hooks,
limit resolution, and a timer thread that the ``limits`` memory storage starts every 10 ms to
sweep every key). The rule is the same one (fixed window, a hit counted before the view runs).

Storage (``VIGOR_RATE_LIMIT_STORAGE_URL``): by default the database (server/db/throttle.py),
shared by every process that serves it; ``redis://``… through the ``limits`` storage for it;
``memory://`` counts in each process (one worker, or tests).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, Response, current_app, make_response, request
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import Storage, storage_from_string
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from server.config import ConfigError
from server.db import Database, is_outage
from server.db.throttle import CounterStorageError, DatabaseWindows
from server.metrics import RATE_LIMITED

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class Windows(Protocol):
    """Fixed-window counters: add ``amount`` hits to each ``(key, period, amount)``'s window,
    and say each window's count and when it closes (seconds since the epoch)."""

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]: ...


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

    def hit(self, key: str, period: int, amount: int = 1) -> tuple[int, float]:
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[0] <= now:
                if len(self._windows) >= self._sweep_at:
                    self._sweep(now)
                window = self._windows[key] = [now + period, 0]
            window[1] += amount
            return int(window[1]), window[0]

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        return [self.hit(key, period, amount) for key, period, amount in hits]

    def _sweep(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
        self._sweep_at = max(1024, 2 * len(self._windows))


class SharedWindows:
    """Counters in a ``limits`` storage (Redis, Memcached...), shared by every process.

    Raises:
        ConfigError: the URL names no storage ``limits`` knows, its client library is not
            installed, or the storage does not answer (told at startup, not at the first hit).
    """

    def __init__(self, url: str) -> None:
        try:
            self._storage: Storage = storage_from_string(url)  # type: ignore[assignment]
            reachable = self._storage.check()
        except ConfigurationError as exc:
            raise ConfigError(f"VIGOR_RATE_LIMIT_STORAGE_URL: {exc}") from None
        if not reachable:
            raise ConfigError(
                f"VIGOR_RATE_LIMIT_STORAGE_URL: the rate-limit storage at {_without_password(url)}"
                " does not answer"
            )

    def hit(self, key: str, period: int, amount: int = 1) -> tuple[int, float]:
        return self._storage.incr(key, period, amount), self._storage.get_expiry(key)

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        """Raises:
        CounterStorageError: the storage did not answer (its client's error stops here)."""
        try:
            return [self.hit(key, period, amount) for key, period, amount in hits]
        except Exception as exc:
            raise CounterStorageError(f"the rate-limit storage did not count: {exc}") from exc


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="vigor-ratelimit-sync", daemon=True).start()


class BatchedWindows:
    """Counts in this process, added to ``shared`` counts about once per ``interval`` seconds,
    on a thread of their own.

    For update checks and reports, where a write to the shared storage on every request would
    cost more than the limit is worth: on SQLite, 110-130 µs of CPU and 400 µs of wall time per
    check (2 keys, one statement), against 4 µs for counting here (``bench/check_profile.py``,
    "rate limiter"; a whole check is 850-1,000 µs of CPU). The first hit after ``interval``
    starts a sync: every hit this process counted since its last sync goes to the shared
    windows in one call, which answers their totals. No request waits for it (a sync of a
    second's thousand licenses holds SQLite's write lock for 10 ms or more, and the other
    process's sync waits for it): meanwhile, and always, a key's count is its last known total
    plus this process's hits since. Hits in other processes are thus seen about ``interval``
    late (plus their own idle time): a limit of 120 per minute lets through at most about one
    second's worth of other processes' hits more. A sync that fails (the storage is down) is
    logged, and its hits are shared at the next one: counting goes on in this process meanwhile.

    Args:
        start: runs a sync (on a new thread; tests run it at once).
    """

    def __init__(
        self,
        shared: Windows,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        start: Callable[[Callable[[], None]], None] = _in_a_thread,
    ) -> None:
        self._shared = shared
        self._interval = interval
        self._clock = clock
        self._start = start
        self._lock = threading.Lock()
        self._pending: dict[str, list[int]] = {}  # key -> [period, hits since the last sync]
        self._sending: dict[str, list[int]] = {}  # the hits of the sync under way
        self._known: dict[str, tuple[int, float]] = {}  # key -> (shared total, closes_at)
        self._next_sync = 0.0
        self._closed = False
        self._idle = threading.Event()  # set while no sync is under way
        self._idle.set()

    def count(self, hits: Sequence[tuple[str, int, int]]) -> list[tuple[int, float]]:
        now = self._clock()
        with self._lock:
            for key, period, amount in hits:
                self._pending.setdefault(key, [period, 0])[1] += amount
            due = now >= self._next_sync and self._idle.is_set() and not self._closed
            if due:
                self._next_sync = now + self._interval
                self._idle.clear()
                self._sending, self._pending = self._pending, {}
            estimates = [self._estimate(key, period, now) for key, period, _ in hits]
        if due:
            try:
                self._start(self._sync)
            except RuntimeError:  # no thread can start now: this request shares the counts
                self._sync()
        return estimates

    def _sync(self) -> None:
        sending = self._sending
        totals: list[tuple[int, float]] | None = None
        try:
            totals = self._shared.count([(key, p, n) for key, (p, n) in sending.items()])
        except Exception as exc:  # noqa: BLE001 - any storage's failure: logged, hits kept
            log.error("rate-limit hits not shared (kept for the next sync): %s", exc)
        finally:
            now = self._clock()
            with self._lock:
                if totals is None:
                    for key, (period, amount) in sending.items():
                        self._pending.setdefault(key, [period, 0])[1] += amount
                else:
                    self._known = {k: w for k, w in self._known.items() if w[1] > now}
                    self._known.update(zip(sending, totals, strict=True))
                self._sending = {}
                self._idle.set()

    def idle(self, timeout: float) -> bool:
        """Wait until no sync is under way (at most ``timeout`` seconds); whether none is."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Start no more syncs, and wait for the one under way: the storage is going away (the
        hits not shared yet are dropped: a process that stops forgets its counts anyway)."""
        with self._lock:
            self._closed = True
        self.idle(timeout)

    def _estimate(self, key: str, period: int, now: float) -> tuple[int, float]:
        pending = self._pending.get(key, (period, 0))[1] + self._sending.get(key, (period, 0))[1]
        known = self._known.get(key)
        if known is None or known[1] <= now:
            return pending, now + period
        return known[0] + pending, known[1]


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at and ":" in credentials else url


def windows_for(url: str, db: Database) -> Windows:
    """The counters ``VIGOR_RATE_LIMIT_STORAGE_URL`` names: the database when empty."""
    if not url:
        return DatabaseWindows(db)
    if url.startswith("memory://"):
        return LocalWindows()
    return SharedWindows(url)


@dataclass(frozen=True)
class RateLimits:
    """The app's counters: ``exact`` (every hit in the shared storage: sign-in forms) and
    ``batched`` (synced once a second: the update check's hot path)."""

    exact: Windows
    batched: Windows

    def close(self) -> None:
        """Before the storage goes away: no sync on a thread of its own may use it after."""
        if isinstance(self.batched, BatchedWindows):
            self.batched.close()


def rate_limits_for(url: str, db: Database) -> RateLimits:
    """Raises:
    ConfigError: the storage is unknown, not installed or unreachable."""
    exact = windows_for(url, db)
    if isinstance(exact, LocalWindows):
        return RateLimits(exact, exact)  # already in this process: nothing to batch
    return RateLimits(exact, BatchedWindows(exact))


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
    return address_key(request.remote_addr)


def address_key(remote_addr: str | None) -> str:
    """The key counting a client address (WSGI's ``REMOTE_ADDR``)."""
    return "address:" + (remote_addr or "127.0.0.1")


def digest(text: str) -> str:
    """What a key holds of a submitted secret or account name: never the value itself."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def link_token() -> str | None:
    """A key naming the capability link a request presents (its ``token`` path part), as a
    digest: guesses at one link's form are counted together from any address."""
    token = (request.view_args or {}).get("token")
    return "link:" + digest(token) if isinstance(token, str) else None


def submitted(field: str, *, fold_case: bool = False) -> Callable[[], str | None]:
    """A key naming the account a form submits in ``field`` (an email, a license key), as a
    digest; None (not counted) when the form has no such field."""

    def account() -> str | None:
        value = request.form.get(field, "").strip()
        if not value:
            return None
        return f"{field}:" + digest(value.lower() if fold_case else value)

    return account


@dataclass(frozen=True)
class Per:
    """Who is counted (``key()``; None: not counted for this request) against which limit
    (``limit()``, read per request: settings may differ between apps)."""

    limit: Callable[[], str]
    key: Callable[[], str | None] = remote_address


EXTENSION = "vigor.rate_limits"


def init_app(app: Flask, storage_url: str, db: Database) -> RateLimits:
    """Count in the storage ``storage_url`` names (see :func:`windows_for`); returns the
    counters, to be closed before that storage.

    Raises:
        ConfigError: the storage is unknown, not installed or unreachable.
    """
    limits = rate_limits_for(storage_url, db)
    app.extensions[EXTENSION] = limits
    return limits


def scope_of(view: Callable[..., Any]) -> str:
    """The counters' namespace of a limited view: two views never share a counter."""
    return f"{view.__module__}.{view.__qualname__}"


def rate_limited(
    *counted: Per, methods: Sequence[str] | None = None, batched: bool = False
) -> Callable[[F], F]:
    """Limit a view: each :class:`Per` counts its key against its limit, and refuses apart.

    Args:
        counted: who is counted against which limit; each is limited separately.
        methods: only these methods are counted (all when None).
        batched: count in this process and share the counts once a second
            (:class:`BatchedWindows`), for a hot path; else every hit is shared at once.
    """

    def decorate(view: F) -> F:
        scope = scope_of(view)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if methods is not None and request.method not in methods:
                return view(*args, **kwargs)
            limits: RateLimits = current_app.extensions[EXTENSION]
            headers = _hit(limits.batched if batched else limits.exact, scope, counted)
            response = view(*args, **kwargs)
            if not isinstance(response, Response):
                response = make_response(response)
            if headers:
                _set_headers(response.headers, headers)
            return response

        return wrapper  # type: ignore[return-value]

    return decorate


def _set_headers(target: Headers, headers: dict[str, str]) -> None:
    """``target.update(headers)``, in one pass over ``target`` (three ``set`` calls, each a
    scan, cost an update check about 10 µs)."""
    present = {name.lower() for name, _ in target}
    if any(name.lower() in present for name in headers):
        target.update(headers)
    else:
        target.extend(headers.items())


def _hit(windows: Windows, scope: str, counted: Sequence[Per]) -> dict[str, str]:
    """Count one hit on every (limit, key) of the request being handled: see :func:`hit`."""
    keyed = [(key, per.limit()) for per in counted if (key := per.key()) is not None]
    where = f"{request.method} {request.path}"
    return hit(windows, scope, keyed, endpoint=request.endpoint or "", where=where)


def hit(
    windows: Windows,
    scope: str,
    keyed: Sequence[tuple[str, str]],
    *,
    endpoint: str,
    where: str,
) -> dict[str, str]:
    """Count one hit on every ``(key, limits)``; raise 429 when any is over; else the
    ``X-RateLimit-*`` headers of the tightest limit.

    Args:
        scope: the view's counters (:func:`scope_of`).
        keyed: who is counted (``address:…``, ``license:…``) against which limits (``10/minute``).
        endpoint: the view's endpoint, naming refusals in the metrics.
        where: the request's method and path, for the log.

    Raises:
        TooManyRequests: a limit is exceeded (``Retry-After``: until its window closes).
        ServiceUnavailable: the counters' storage does not answer.
        SQLAlchemyError: the database (the default storage) is unavailable.
    """
    asked: list[tuple[str, int, int]] = []
    amounts: list[int] = []
    whose: list[str] = []  # who each window counts (the key's kind: address, license...)
    for key, limits in keyed:
        for amount, period, suffix in _windows_of(limits):
            asked.append((f"vigor/{scope}/{key}{suffix}", period, 1))
            amounts.append(amount)
            whose.append(key.partition(":")[0])
    if not asked:
        return {}
    tightest: tuple[int, float, int] | None = None  # remaining, closes_at, amount
    refused_until = 0.0
    try:
        counts = windows.count(asked)
    except CounterStorageError as exc:
        if isinstance(exc.__cause__, SQLAlchemyError) and is_outage(exc.__cause__):
            raise exc.__cause__ from None  # the database's outage, answered as such
        log.error("rate limits not counted on %s: %s", where, exc)
        raise ServiceUnavailable(
            "the rate-limit storage does not answer; try again shortly", retry_after=5
        ) from exc
    refused_by: set[str] = set()
    for amount, kind, (count, closes_at) in zip(amounts, whose, counts, strict=True):
        remaining = max(0, amount - count)
        if count > amount:
            refused_until = max(refused_until, closes_at)
            refused_by.add(kind)
        if tightest is None or remaining < tightest[0]:
            tightest = (remaining, closes_at, amount)
    if refused_until:
        for kind in sorted(refused_by):
            RATE_LIMITED.labels(f"{endpoint}:{kind}").inc()
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
