"""Prometheus metrics: counters and histograms kept in process, and a few state gauges.

Events (requests, checks, rate-limit refusals, storage failures, bytes published and served) are
counted where they happen, in ``prometheus_client`` objects defined here at import time. Under
``vigor serve`` every gunicorn worker writes them to memory-mapped files in a directory of its
own run (``PROMETHEUS_MULTIPROC_DIR``, made fresh by ``server.serving``); ``/metrics`` adds up
every worker's files, and a worker that exits is marked dead (its counts stay in the sums, its
live gauges leave them). Without that variable (tests, ``flask run``) the same objects count in
this process's default registry. Other modules define their own objects the same way.

A few gauges describe state rather than events and are read from the database at scrape time,
where that is cheap: releases and licenses by status (small tables). Counts of events
(downloads, reports) are counters, never ``COUNT(*)`` over tables that grow without bound.
docs/operations.md lists every metric and the alerts worth setting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from server.db import Database
from server.domain.models import License, Release
from server.domain.vocabulary import ReleaseState
from server.storage.base import (
    ArtifactStore,
    BlobNotFoundError,
    BlobWriter,
    DigestMismatchError,
    SizeLimitError,
    StorageError,
    StoredBlob,
)

log = logging.getLogger(__name__)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "vigor_http_requests",
    "HTTP requests answered, by route (the URL rule, never the raw path), method and status",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "vigor_http_request_seconds",
    "Seconds until the answer was ready (a streamed body not included), by route",
    ["route"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600),
)
CHECKS = Counter(
    "vigor_checks",
    "Update checks by outcome: update, no_update, or the error code of a refusal",
    ["outcome"],
)
RATE_LIMITED = Counter(
    "vigor_rate_limited",
    "Requests refused by a rate limit, by limit (endpoint and who is counted)",
    ["limit"],
)
STORAGE_FAILURES = Counter(
    "vigor_storage_failures",
    "Artifact store operations that failed, by operation",
    ["operation"],
)
PUBLISH_BYTES = Counter("vigor_publish_bytes", "Bytes received into the artifact store by uploads")
DOWNLOADS = Counter("vigor_downloads", "Download links answered (artifacts and patches)")
DOWNLOAD_BYTES = Counter(
    "vigor_download_bytes",
    "Bytes of artifacts and patches served or redirected to (the length of each answer)",
)
APPLY_REPORTS = Counter("vigor_apply_reports", "Apply reports received, by outcome", ["outcome"])


class StateCollector(Collector):
    """Gauges of state read from the database at scrape time (cheap ones only), and
    ``vigor_database_up``: a scrape during a database outage still returns every counter."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        try:
            gauges = list(self._read())
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            yield GaugeMetricFamily("vigor_database_up", "The database answered", value=0)
            return
        yield GaugeMetricFamily("vigor_database_up", "The database answered", value=1)
        yield from gauges

    def _read(self) -> Iterator[Metric]:
        with self.db.sessions() as session:
            releases = GaugeMetricFamily("vigor_releases", "Releases by status", labels=["status"])
            published = (
                session.scalar(select(func.count()).where(Release.published_at.is_not(None))) or 0
            )
            drafts = session.scalar(select(func.count()).where(Release.published_at.is_(None))) or 0
            yanked = session.scalar(select(func.count()).where(Release.yanked_at.is_not(None))) or 0
            releases.add_metric([ReleaseState.PUBLISHED], published)  # yanked ones included
            releases.add_metric([ReleaseState.DRAFT], drafts)
            releases.add_metric([ReleaseState.YANKED], yanked)
            yield releases
            licenses = GaugeMetricFamily("vigor_licenses", "Licenses by status", labels=["status"])
            for status, count in session.execute(
                select(License.status, func.count()).group_by(License.status)
            ):
                licenses.add_metric([status], count)
            yield licenses


def multiprocess_dir() -> str | None:
    """The directory every worker of this server counts in, or None (one process)."""
    return os.environ.get(MULTIPROCESS_DIR) or None


def exposition(db: Database, extra: tuple[Collector, ...] = ()) -> bytes:
    """The text ``/metrics`` answers: every process's counters, the state gauges, ``extra``."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Default())
    registry.register(StateCollector(db))
    for collector in extra:
        registry.register(_WithoutDatabase(collector))
    return generate_latest(registry)


class _WithoutDatabase(Collector):
    """A collector that reads the database, left out of a scrape while the database is away
    (``vigor_database_up`` says so) instead of failing the whole scrape."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self.collector.collect())
        except SQLAlchemyError as exc:
            log.warning(
                "metrics: %s skipped: %s", type(self.collector).__name__, type(exc).__name__
            )
            return
        yield from metrics


class _Default(Collector):
    """This process's default registry (process and platform metrics included)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: a worker's live gauges leave the sums."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- the artifact store


class MeteredStore:
    """An :class:`ArtifactStore` that counts its failures (by operation) and the bytes uploads
    write, around any store (local, S3...). Every other attribute is the store's own."""

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        self.name = store.name

    @property
    def inner(self) -> ArtifactStore:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def metered(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except StorageError as exc:
                _count_failure(name, exc)
                raise

        return metered

    def writer(self, max_size: int | None = None, expected_sha256: str | None = None) -> BlobWriter:
        try:
            return _MeteredWriter(
                self._store.writer(max_size=max_size, expected_sha256=expected_sha256)
            )
        except StorageError as exc:
            _count_failure("writer", exc)
            raise

    def __repr__(self) -> str:
        return f"MeteredStore({self._store!r})"


def _count_failure(operation: str, error: StorageError) -> None:
    # A blob that is not there is an answer; too many bytes, or not the promised ones, are the
    # client's doing.
    if not isinstance(error, BlobNotFoundError | SizeLimitError | DigestMismatchError):
        STORAGE_FAILURES.labels(operation).inc()


class _MeteredWriter:
    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        try:
            written = self._writer.write(data)
        except StorageError as exc:
            _count_failure("write", exc)
            raise
        PUBLISH_BYTES.inc(len(data))
        return written

    def commit(self) -> StoredBlob:
        try:
            return self._writer.commit()
        except StorageError as exc:
            _count_failure("commit", exc)
            raise

    def abort(self) -> None:
        try:
            self._writer.abort()
        except StorageError as exc:
            _count_failure("abort", exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)
