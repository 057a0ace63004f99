"""The worker's Prometheus metrics: counters and a histogram kept in process (multiprocess-safe
through prometheus_client's own mode), and a collector that reads the queue's depth at scrape
time (registered by whoever serves /metrics)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.db import Database
from server.domain import jobs
from server.domain.vocabulary import JobKind, JobState

JOBS_COMPLETED = Counter("vigor_jobs_completed", "Background jobs that succeeded", ["kind"])
JOBS_FAILED = Counter(
    "vigor_jobs_failed", "Background job attempts that failed (retried or given up)", ["kind"]
)
JOB_SECONDS = Histogram(
    "vigor_job_seconds",
    "Time a background job ran, successful or not",
    ["kind"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)


class JobsCollector(Collector):
    """``vigor_jobs_queued{kind}``, ``vigor_jobs_stuck{kind}`` (failed, waiting for an operator)
    and ``vigor_jobs_oldest_queued_seconds``: one grouped query per scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.sessions() as session:
            now = jobs.now_precise()
            summary = jobs.summary(session, now)
        queued = GaugeMetricFamily("vigor_jobs_queued", "Jobs waiting to run", labels=["kind"])
        failed = GaugeMetricFamily(
            "vigor_jobs_stuck", "Jobs that failed every attempt", labels=["kind"]
        )
        for kind in JobKind:
            queued.add_metric([kind], summary.count(kind, JobState.QUEUED))
            failed.add_metric([kind], summary.count(kind, JobState.FAILED))
        yield queued
        yield failed
        yield GaugeMetricFamily(
            "vigor_jobs_oldest_queued_seconds",
            "How long the longest-waiting due job has waited",
            value=summary.oldest_queued_seconds(now),
        )
