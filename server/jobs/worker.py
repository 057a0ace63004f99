"""``vigor worker``: huey's consumer running jobs, and a heartbeat.

The heartbeat thread records the worker's sign of life (``worker_beats``, read by /healthz) and
renews the leases of the jobs it runs, so that a long job keeps its lease while a worker killed
under a job loses it within ``VIGOR_JOB_LEASE_SECONDS``. SIGTERM (systemd's stop) and SIGINT
stop the worker gracefully: it takes no new job and finishes those it runs; a second signal
interrupts them (the jobs then return to the queue when their leases expire).
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy.exc import SQLAlchemyError

from server.domain import jobs
from server.jobs.queue import JobQueue

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(queue: JobQueue, workers: int) -> None:
    """Run jobs until stopped by a signal (blocks)."""
    runner = queue.runner
    name = worker_name()
    interval = max(1.0, min(10.0, runner.lease_seconds / 4))
    stopping = threading.Event()

    def heartbeat() -> None:
        while True:
            try:
                with runner.db.sessions() as session:
                    jobs.beat(session, name, jobs.now_precise())
                runner.renew_leases()
            except SQLAlchemyError as exc:  # the database is away: try again at the next beat
                log.warning("worker heartbeat failed: %s", exc)
            if stopping.wait(interval):
                return

    consumer = queue.huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=True,  # the sweep, every minute
        max_delay=1.0,  # an embedded (SQLite) queue is polled at least once a second
        graceful_signal="TERM",
    )
    beats = threading.Thread(target=heartbeat, name="vigor-heartbeat", daemon=True)
    beats.start()
    # What was queued while no worker ran, and what a killed worker left running.
    queue.dispatch(runner.due())
    log.info("worker %s running jobs with %d thread(s)", name, workers)
    try:
        consumer.run()
    finally:
        stopping.set()
        beats.join(timeout=interval + 5)
        try:
            with runner.db.sessions() as session:
                jobs.forget_worker(session, name)
        except SQLAlchemyError as exc:
            log.warning("could not remove the worker's heartbeat: %s", exc)
