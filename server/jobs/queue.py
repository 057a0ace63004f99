"""huey, carrying job ids from the processes that commit jobs to the workers that run them.

Embedded default: a SQLite file in the instance directory (every process on one machine shares
it). Distributed: Redis, when ``VIGOR_QUEUE_URL`` names one. Either way the queue holds only
ids; a message lost with the queue's storage is sent again by the sweep (docs/worker.md).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from redis import ConnectionPool, RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings, ensure_private_dir
from server.domain.jobs import DISPATCH
from server.domain.vocabulary import JobKind
from server.jobs.runner import JobRunner

log = logging.getLogger(__name__)

QUEUE_NAME = "vigor"
# A message that cannot be sent is not an error: the job's row is committed and the sweep sends
# it again. These are what the two storages raise when they cannot be reached.
_SEND_ERRORS = (sqlite3.Error, RedisError, OSError)


def make_huey(settings: Settings) -> Huey:
    """The huey instance ``settings`` configure (no task registered yet)."""
    if settings.queue_url:
        pool = ConnectionPool.from_url(
            settings.queue_url, socket_connect_timeout=5, socket_timeout=10
        )
        return RedisHuey(QUEUE_NAME, results=False, connection_pool=pool)
    ensure_private_dir(settings.instance_dir)
    return SqliteHuey(QUEUE_NAME, results=False, filename=str(settings.queue_file))


class JobQueue:
    """The huey tasks of this process: ``run_job(id)`` and the periodic ``sweep``.

    The huey instance is made at first use: a process that never sends a job (a CLI command
    that only reads) opens no queue.
    """

    def __init__(self, settings: Settings, runner: JobRunner) -> None:
        self.settings = settings
        self.runner = runner
        self._huey: Huey | None = None
        self._run_job: Any = None
        self._lock = threading.Lock()

    @property
    def huey(self) -> Huey:
        with self._lock:
            if self._huey is None:
                self._huey = self._register(make_huey(self.settings))
            return self._huey

    def _register(self, huey: Huey) -> Huey:
        runner = self.runner

        def run_job(job_id: int) -> None:
            delay = runner.run(job_id)
            if delay is not None:
                task.schedule(args=(job_id,), delay=delay)

        def sweep() -> None:
            self.dispatch(runner.due())

        def reminders() -> None:
            # One row whatever the number of workers: queued again once the last scan is done.
            runner.ask(JobKind.REMINDERS_SCAN, "reminders_scan")

        def contract_events() -> None:
            # A job, not the scan itself: it is retried if it fails, and its key keeps two
            # workers' periodic tasks from queueing two scans.
            runner.ask(JobKind.CONTRACT_EVENTS_SCAN, "contract_events_scan")

        task = huey.task(name="vigor.run_job")(run_job)
        huey.periodic_task(crontab(), name="vigor.sweep")(sweep)  # every minute
        huey.periodic_task(crontab(minute="5"), name="vigor.reminders")(reminders)  # hourly
        huey.periodic_task(crontab(minute="7"), name="vigor.contract_events")(contract_events)
        self._run_job = task
        return huey

    def dispatch(self, job_ids: Iterable[int]) -> None:
        """Send each job id to the workers now (a job that is not due is left for later)."""
        for job_id in job_ids:
            try:
                self._task()(job_id)
            except _SEND_ERRORS as exc:
                log.warning(
                    "job %d waits for the sweep: the queue is unreachable (%s)", job_id, exc
                )

    def _task(self) -> Any:
        self.huey  # noqa: B018 - made at first use (opening its storage), with its tasks
        return self._run_job

    def close(self) -> None:
        with self._lock:
            if self._huey is not None:
                self._huey.storage.close()
                self._huey = None


def dispatch_after_commit(sessions: sessionmaker[Session], queue: JobQueue) -> None:
    """Send the jobs a session enqueued once it commits; forget them if it rolls back."""

    @event.listens_for(sessions, "after_commit")
    def _send(session: Session) -> None:
        job_ids = session.info.pop(DISPATCH, None)
        if job_ids:
            queue.dispatch(job_ids)

    @event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(DISPATCH, None)
