"""Running one job: claim its row, call its kind's handler, record the outcome.

Every path of a job goes through :meth:`JobRunner.run` — the worker's huey task, and the
in-process :meth:`JobRunner.run_due` (``vigor jobs run-due``, and tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from server.db import Database
from server.domain import jobs
from server.domain.vocabulary import JobKind
from server.jobs.metrics import JOB_SECONDS, JOBS_COMPLETED, JOBS_FAILED

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], object]
"""What a job kind does with its payload; any exception it raises is the job's failure."""


class JobRunner:
    """Claims and runs jobs on ``db`` with ``handlers``; knows which jobs it is running (their
    leases are renewed by the worker's heartbeat)."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[JobKind, Handler],
        policy: jobs.RetryPolicy,
        lease_seconds: float,
        clock: Callable[[], datetime] = jobs.now_precise,
        policies: Mapping[JobKind, jobs.RetryPolicy] | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.policy = policy
        self.policies = dict(policies or {})  # kinds retried on their own schedule (webhooks)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def run(self, job_id: int) -> float | None:
        """Run job ``job_id`` if it is still to be run (another worker may have taken it).

        Returns the delay before its next try when it failed and will be tried again, else None.
        """
        with self.db.sessions() as session:
            job = jobs.claim(session, job_id, self.lease_seconds, self.clock())
            if job is None:
                return None
            kind, payload, attempt = job.kind, dict(job.payload), job.attempts
        with self._lock:
            self._running.add(job_id)
        started = time.monotonic()
        try:
            self.handlers[kind](payload)
        except Exception as exc:  # noqa: BLE001 - whatever a job raises is its recorded failure
            JOBS_FAILED.labels(kind).inc()
            error = f"{type(exc).__name__}: {exc}"
            with self.db.sessions() as session:
                policy = self.policies.get(kind, self.policy)
                delay = jobs.fail(session, job_id, error, policy, self.clock())
            then = "gave up" if delay is None else f"next try in {delay:.0f} s"
            log.warning("job %d (%s) attempt %d failed: %s; %s", job_id, kind, attempt, error, then)
            return delay
        finally:
            JOB_SECONDS.labels(kind).observe(time.monotonic() - started)
            with self._lock:
                self._running.discard(job_id)
        with self.db.sessions() as session:
            jobs.finish(session, job_id, self.clock())
        JOBS_COMPLETED.labels(kind).inc()
        log.info("job %d (%s) done", job_id, kind)
        return None

    def ask(self, kind: JobKind, key: str, payload: dict[str, Any] | None = None) -> None:
        """Queue a job (a periodic task's), committed at once; it is dispatched on commit."""
        with self.db.sessions() as session:
            jobs.enqueue(session, kind, key, payload or {})
            session.commit()

    def due(self) -> list[int]:
        """The jobs to dispatch now: due, or left running by a worker that died."""
        with self.db.sessions() as session:
            return jobs.due(session, self.clock())

    def run_due(self) -> int:
        """Run every due job here, in this process, once each; returns how many were due."""
        due = self.due()
        for job_id in due:
            self.run(job_id)
        return len(due)

    def renew_leases(self) -> None:
        """Extend the leases of the jobs this process is running (called by the heartbeat)."""
        with self._lock:
            running = list(self._running)
        with self.db.sessions() as session:
            jobs.renew(session, running, self.lease_seconds, self.clock())
