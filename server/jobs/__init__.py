"""Background jobs: an outbox in the application database, carried to workers by huey.

The truth of every job is its row (``server/domain/jobs.py``, table ``jobs``), written by
:func:`enqueue` in the caller's transaction. huey only carries job ids: after the commit each new
id is sent as a task (:mod:`server.jobs.queue`); the worker (``vigor worker``,
:mod:`server.jobs.worker`) claims the row, runs the kind's handler (:mod:`server.jobs.runner`)
and marks it done, or schedules the next try. A periodic sweep, and every worker when it starts,
sends again the ids of due jobs and of jobs whose worker died (lease expired): a lost message or
a ``kill -9`` delays a job, never loses it. See docs/worker.md.
"""

from __future__ import annotations

from server.domain.jobs import enqueue

__all__ = ["enqueue"]
