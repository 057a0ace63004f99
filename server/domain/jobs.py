"""Background jobs as rows: the outbox the worker runs (the queue engine only carries ids).

A job is written by :func:`enqueue` in the transaction of what asked for it (a publish and its
patch job commit or roll back together). A worker :func:`claim`s a row atomically — a queued
row that is due, or a running one whose lease ran out because its worker died — runs it, and
:func:`finish`es it; a failure is :func:`fail`ed into a retry after an exponentially growing
delay, or into ``failed`` once the attempts are spent, keeping the error. :func:`due` lists what
should be dispatched again (the sweep). Nothing here knows the queue engine: ids to dispatch
after the commit are left in ``session.info`` under :data:`DISPATCH` (see ``server/jobs``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, NotFoundError
from server.domain.models import Job, WorkerBeat
from server.domain.outbox import DISPATCH, enqueue, now_precise, requeue
from server.domain.vocabulary import JobKind, JobState

__all__ = ["DISPATCH", "enqueue", "now_precise"]  # (from server/domain/outbox.py)


def claim(session: Session, job_id: int, lease_seconds: float, now: datetime) -> Job | None:
    """Take job ``job_id`` for this worker if it is due (or its lease expired), atomically: of
    several workers given the same id, one gets the job and the others None. Commits."""
    taken = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                and_(Job.state == JobState.QUEUED, Job.run_after <= now),
                and_(Job.state == JobState.RUNNING, Job.lease_until < now),
            ),
        )
        .values(
            state=JobState.RUNNING,
            attempts=Job.attempts + 1,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
    )
    session.commit()
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Job, job_id, populate_existing=True)


def finish(session: Session, job_id: int, now: datetime) -> None:
    """Mark a claimed job done. Commits."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING)
        .values(state=JobState.DONE, lease_until=None, finished_at=now, last_error=None)
    )
    session.commit()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed job is tried again."""

    max_attempts: int = 5
    base_delay: float = 30.0  # seconds before the 2nd attempt; doubled for each one after

    def delay(self, attempts: int) -> float:
        return self.base_delay * float(2 ** max(attempts - 1, 0))


def fail(
    session: Session, job_id: int, error: str, policy: RetryPolicy, now: datetime
) -> float | None:
    """Record a claimed job's failure. Returns the delay before it is tried again, or None when
    its attempts are spent and it is now ``failed`` (the error is kept either way). Commits."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.state != JobState.RUNNING:
        session.rollback()
        return None
    job.last_error = error[:2000]
    job.lease_until = None
    delay: float | None
    if job.attempts >= policy.max_attempts:
        job.state = JobState.FAILED
        job.finished_at = now
        delay = None
    else:
        delay = policy.delay(job.attempts)
        job.state = JobState.QUEUED
        job.run_after = now + timedelta(seconds=delay)
    session.commit()
    return delay


def due(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Jobs a worker should be given now: queued and due, or running past their lease."""
    return list(
        session.scalars(
            select(Job.id)
            .where(
                or_(
                    and_(Job.state == JobState.QUEUED, Job.run_after <= now),
                    and_(Job.state == JobState.RUNNING, Job.lease_until < now),
                )
            )
            .order_by(Job.run_after)
            .limit(limit)
        )
    )


def renew(session: Session, job_ids: Iterable[int], lease_seconds: float, now: datetime) -> None:
    """Extend the leases of jobs this worker is still running. Commits."""
    ids = list(job_ids)
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.state == JobState.RUNNING)
            .values(lease_until=now + timedelta(seconds=lease_seconds))
        )
    session.commit()


def retry(session: Session, job_id: int, actor: str) -> Job:
    """An operator asks for a failed job (or one waiting for its next try) to run now.

    Raises:
        NotFoundError: no such job.
        ConflictError: the job is running or done.
    """
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    if job.state not in (JobState.FAILED, JobState.QUEUED):
        raise ConflictError(f"job {job_id} is {job.state}; only a failed or queued job is retried")
    requeue(job)
    audit.record(session, actor, "job.retry", f"job {job_id}", kind=job.kind, key=job.key)
    session.flush()
    session.info.setdefault(DISPATCH, []).append(job.id)
    return job


def beat(session: Session, name: str, now: datetime) -> None:
    """Record that worker ``name`` is alive. Commits."""
    row = session.get(WorkerBeat, name)
    if row is None:
        session.add(WorkerBeat(name=name, started_at=now, beat_at=now))
    else:
        row.beat_at = now
    session.commit()


def forget_worker(session: Session, name: str) -> None:
    """A worker that stops cleanly takes its heartbeat with it. Commits."""
    row = session.get(WorkerBeat, name)
    if row is not None:
        session.delete(row)
    session.commit()


@dataclass(frozen=True)
class QueueSummary:
    """What the admin Jobs page, the metrics and the health probe show."""

    counts: dict[tuple[JobKind, JobState], int]
    oldest_queued: dict[JobKind, datetime]  # the longest-waiting due job of each kind
    last_beat: datetime | None

    def count(self, kind: JobKind, state: JobState) -> int:
        return self.counts.get((kind, state), 0)

    def oldest_queued_seconds(self, now: datetime) -> float:
        if not self.oldest_queued:
            return 0.0
        return max(0.0, (now - min(self.oldest_queued.values())).total_seconds())


def summary(session: Session, now: datetime) -> QueueSummary:
    """Queue depth by kind and state, the oldest due job of each kind, the last heartbeat."""
    counts = {
        (JobKind(kind), JobState(state)): int(n)
        for kind, state, n in session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        )
    }
    oldest = {
        JobKind(kind): when
        for kind, when in session.execute(
            select(Job.kind, func.min(Job.run_after))
            .where(Job.state == JobState.QUEUED, Job.run_after <= now)
            .group_by(Job.kind)
        )
        if when is not None
    }
    return QueueSummary(
        counts=counts,
        oldest_queued=oldest,
        last_beat=session.scalar(select(func.max(WorkerBeat.beat_at))),
    )


def recent_problems(session: Session, limit: int = 50) -> list[Job]:
    """Failed jobs and jobs waiting to be retried after an error, newest first."""
    return list(
        session.scalars(
            select(Job)
            .where(
                or_(
                    Job.state == JobState.FAILED,
                    and_(Job.state == JobState.QUEUED, Job.last_error.is_not(None)),
                )
            )
            .order_by(Job.id.desc())
            .limit(limit)
        )
    )


def list_jobs(session: Session, state: JobState | None = None, limit: int = 100) -> list[Job]:
    """The newest jobs, in one state or all."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Job.state == state)
    return list(session.scalars(query))


@dataclass(frozen=True)
class JobsOverview:
    """The admin Jobs page: depth by kind and state, the oldest wait, recent problems."""

    summary: QueueSummary
    problems: list[Job]
    now: datetime

    @property
    def rows(self) -> list[tuple[JobKind, dict[JobState, int]]]:
        return [
            (kind, {state: self.summary.count(kind, state) for state in JobState})
            for kind in JobKind
        ]

    @property
    def oldest_queued_seconds(self) -> float:
        return self.summary.oldest_queued_seconds(self.now)

    @property
    def heartbeat_age_seconds(self) -> float | None:
        last = self.summary.last_beat
        return None if last is None else max(0.0, (self.now - last).total_seconds())


def overview(session: Session, now: datetime) -> JobsOverview:
    """What the admin Jobs page shows, in three queries."""
    return JobsOverview(summary(session, now), recent_problems(session), now)
