"""What load balancers, orchestrators and Prometheus ask: ``/livez``, ``/readyz``, ``/healthz``
and ``/metrics`` (docs/operations.md).

- ``/livez``: the process answers HTTP. No I/O at all: restarting a process cannot fix the
  database, so liveness never depends on it.
- ``/readyz``: this process can answer update checks, i.e. the database answers (within
  :data:`READY_TIMEOUT_SECONDS`). The artifact store is left out on purpose: checks need only the
  database, and an S3 outage must not pull every instance out of a load balancer at once.
- ``/healthz``: every probe in detail (database and its schema, storage, the root of trust's
  expiry, and any probe another part adds with :func:`add_probe`); 503 when one reports
  ``"error"`` (a ``"warning"`` is shown, still healthy).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from server.db import Database
from server.domain.roots import ROOT_WARNING_DAYS
from server.domain.trust import iso
from server.metrics import exposition
from server.services import Services
from server.storage.base import StorageError
from server.web import services
from server.web.errors import DATABASE_RETRY_AFTER

blueprint = Blueprint("health", __name__)

READY_TIMEOUT_SECONDS = 2.0
"""How long ``/readyz`` waits for the database: a load balancer's own probe timeout is usually
a few seconds, and an answer after it is worth nothing."""

ProbeResult = Mapping[str, Any]


@dataclass(frozen=True)
class Probe:
    """A named part of ``/healthz``: ``run`` returns details (a ``"status"`` of ``"error"``
    makes the instance unhealthy; ``"ok"`` is assumed without one) or raises (an error)."""

    name: str
    run: Callable[[Services], ProbeResult]


PROBES = "vigor.health_probes"


def add_probe(app: Flask, name: str, run: Callable[[Services], ProbeResult]) -> None:
    """Add a probe to ``/healthz`` (after the database and storage probes)."""
    app.extensions[PROBES].append(Probe(name, run))


COLLECTORS = "vigor.metrics_collectors"


def add_collector(app: Flask, collector: Collector) -> None:
    """Add a collector read at scrape time to ``/metrics`` (a gauge of state, such as the job
    queue's depth); counters and histograms need none: they are defined at import time."""
    app.extensions[COLLECTORS].append(collector)


def in_session(run: Callable[[Session], ProbeResult]) -> Callable[[Services], ProbeResult]:
    """A probe that reads in its own session: ``add_probe(app, "worker",
    in_session(worker_health))``."""

    def probe(svc: Services) -> ProbeResult:
        with svc.db.sessions() as session:
            return run(session)

    return probe


class TimedPing:
    """The database's ping, given at most ``timeout`` seconds: a server that does not answer (a
    host down, packets dropped) makes the probe fail in time instead of hanging it. A ping still
    waiting is shared by the probes that come meanwhile, so at most one thread waits."""

    def __init__(self, db: Database, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self._db = db
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: _Ping | None = None

    def __call__(self) -> str | None:
        """None when the database answered, else why not (one line)."""
        with self._lock:
            if self._pending is None or self._pending.done.is_set():
                self._pending = _Ping(self._db)
            ping = self._pending
        if not ping.done.wait(self._timeout):
            return f"no answer within {self._timeout:g} s"
        return ping.error


class _Ping:
    def __init__(self, db: Database) -> None:
        self.done = threading.Event()
        self.error: str | None = None
        threading.Thread(target=self._run, args=(db,), name="vigor-db-ping", daemon=True).start()

    def _run(self, db: Database) -> None:
        try:
            db.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready, told as such
            self.error = f"error: {type(exc).__name__}"
        finally:
            self.done.set()


def _database(svc: Services) -> ProbeResult:
    problem = _ping()
    if problem:
        return {"status": problem}
    revision, head = svc.db.current_revision(), svc.db.head_revision
    if revision != head:
        return {"status": "error: schema", "revision": revision, "needs": head}
    return {"status": "ok", "revision": revision}


def _storage(svc: Services) -> ProbeResult:
    try:
        svc.store.ping()
    except StorageError as exc:
        return {"status": f"error: {exc}"}
    return {"status": "ok"}


def _trust(svc: Services) -> ProbeResult:
    root = svc.root()
    left = root.expires - datetime.now(UTC)
    details = {"root_version": root.version, "expires": iso(root.expires)}
    if left <= timedelta(0):
        status = "error: the root of trust has expired; agents refuse it (vigor keys write-root)"
    elif left <= timedelta(days=ROOT_WARNING_DAYS):
        days = math.ceil(left / timedelta(days=1))
        status = f"warning: the root of trust expires in {days} days (vigor keys write-root)"
    else:
        status = "ok"
    return {"status": status, **details}


def _ping() -> str | None:
    ping: TimedPing = current_app.extensions["vigor.ping"]
    return ping()


def init_app(app: Flask, svc: Services) -> None:
    app.extensions["vigor.ping"] = TimedPing(svc.db)
    app.extensions[PROBES] = [
        Probe("database", _database),
        Probe("storage", _storage),
        Probe("trust", _trust),
    ]
    app.extensions[COLLECTORS] = []
    app.register_blueprint(blueprint)


@blueprint.get("/livez")
def livez() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    problem = _ping()
    if problem is None:
        return jsonify({"status": "ok", "database": "ok"}), 200
    response = jsonify({"status": "unavailable", "database": problem})
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response, 503


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    svc = services()
    results: list[dict[str, Any]] = []
    for probe in current_app.extensions[PROBES]:
        started = time.perf_counter()
        try:
            result = {"status": "ok", **probe.run(svc)}
        except Exception as exc:  # noqa: BLE001 - a failing probe is reported, not raised
            result = {"status": f"error: {type(exc).__name__}: {exc}"}
        results.append({"name": probe.name, **result, "seconds": _since(started)})
    healthy = not any(str(r["status"]).startswith("error") for r in results)
    body: dict[str, Any] = {"status": "ok" if healthy else "unhealthy"}
    body.update({r["name"]: r["status"] for r in results if r["name"] in {"database", "storage"}})
    body["probes"] = results
    return jsonify(body), 200 if healthy else 503


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


@blueprint.get("/metrics")
def metrics() -> Response:
    extra = tuple(current_app.extensions[COLLECTORS])
    return Response(exposition(services().db, extra), content_type=CONTENT_TYPE_LATEST)
