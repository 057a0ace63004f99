"""Asking for a background job in the caller's transaction (the outbox's write side).

Apart from ``server/domain/jobs.py`` (which claims, finishes and retries jobs, and audits an
operator's retry) so that what the audit trail itself triggers — webhook events — can queue
jobs without an import cycle; ``jobs`` re-exports these names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain.models import Job
from server.domain.vocabulary import JobKind, JobState

DISPATCH = "vigor.jobs.dispatch"
"""The ``session.info`` key of the job ids to hand to the queue once the session commits."""


def now_precise() -> datetime:
    """The jobs' clock: aware UTC with microseconds (leases and delays are short)."""
    return datetime.now(UTC)


def enqueue(session: Session, kind: JobKind, key: str, payload: dict[str, Any]) -> Job:
    """Ask for a job in the caller's transaction; it runs once the caller commits.

    ``key`` names the piece of work (``patches:release:7``): while a job with that key is queued
    or running this is a no-op; a done or failed one is queued again with the new payload.
    """
    job = session.scalar(select(Job).where(Job.key == key))
    if job is None:
        job = Job(kind=kind, key=key, payload=payload, state=JobState.QUEUED, attempts=0)
        job.run_after = now_precise()
        session.add(job)
    elif job.state in (JobState.DONE, JobState.FAILED):
        requeue(job, payload)
    session.flush()
    session.info.setdefault(DISPATCH, []).append(job.id)
    return job


def requeue(job: Job, payload: dict[str, Any] | None = None) -> None:
    """Put a done, failed or waiting job back in the queue, due now, its attempts counted anew."""
    job.state = JobState.QUEUED
    job.attempts = 0
    job.run_after = now_precise()
    job.lease_until = None
    job.finished_at = None
    job.last_error = None
    if payload is not None:
        job.payload = payload
