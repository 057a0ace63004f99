"""The worker's part of /healthz: is a worker alive, and is the queue keeping up?"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.domain import jobs
from server.domain.vocabulary import JobKind, JobState

HEARTBEAT_STALE_SECONDS = 120.0
"""No heartbeat for this long (several beat intervals): no worker is running."""
QUEUE_LAG_SECONDS = 600.0
"""A due job waiting this long: the workers do not keep up (or none runs)."""


def worker_health(session: Session) -> dict[str, Any]:
    """``{"status", "ok", "heartbeat_age_seconds", "queue_lag_seconds", "queued", "failed"}``
    (``status`` is ``"error"`` when not ``ok``: the form ``/healthz`` probes answer in).

    ``ok`` is false when no worker beat recently while jobs wait, or a due job waited too long.
    An idle instance with no worker and nothing queued is ok (nothing is late).
    """
    now = jobs.now_precise()
    summary = jobs.summary(session, now)
    age = None if summary.last_beat is None else (now - summary.last_beat).total_seconds()
    lag = summary.oldest_queued_seconds(now)
    queued = sum(summary.count(kind, JobState.QUEUED) for kind in JobKind)
    failed = sum(summary.count(kind, JobState.FAILED) for kind in JobKind)
    no_worker = age is None or age > HEARTBEAT_STALE_SECONDS
    ok = not (no_worker and lag > 0) and lag < QUEUE_LAG_SECONDS
    return {
        "status": "ok" if ok else "error",
        "ok": ok,
        "heartbeat_age_seconds": None if age is None else round(age, 1),
        "queue_lag_seconds": round(lag, 1),
        "queued": queued,
        "failed": failed,
    }
