"""Prometheus metrics computed from the database at scrape time.

Counting in the database rather than in process memory keeps the numbers right whatever the
number of worker processes (DESIGN: nothing another process must see lives in memory).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from server.db import Database
from server.domain.models import ApplyReport, DownloadEvent, Installation, License, Release
from server.domain.vocabulary import ReleaseState


class VigorCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
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
            yield GaugeMetricFamily(
                "vigor_installations",
                "Known installations",
                value=session.scalar(select(func.count()).select_from(Installation)) or 0,
            )
            yield GaugeMetricFamily(
                "vigor_downloads_total",
                "Downloads served",
                value=session.scalar(select(func.count()).select_from(DownloadEvent)) or 0,
            )
            reports = GaugeMetricFamily(
                "vigor_apply_reports", "Apply reports by outcome", labels=["outcome"]
            )
            for outcome, count in session.execute(
                select(ApplyReport.outcome, func.count()).group_by(ApplyReport.outcome)
            ):
                reports.add_metric([outcome], count)
            yield reports
