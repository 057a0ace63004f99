"""What the vendor's dashboard and release pages show: totals, downloads over time, versions in
use, security revisions applied by their deadline, and one release's installs and downloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.domain import adoption, usage
from server.domain.models import (
    ApplyReport,
    DownloadEvent,
    Installation,
    License,
    Product,
    Release,
)
from server.domain.vocabulary import ApplyOutcome


@dataclass(frozen=True)
class Totals:
    releases: int  # published (drafts are not counted)
    licenses: int
    installations: int
    downloads: int


@dataclass(frozen=True)
class Dashboard:
    totals: Totals
    products: list[str]  # every product's slug, for the filter
    period: str  # "days" or "weeks"
    product: str | None  # the filter applied, if any
    series: list[usage.Bucket]  # downloads per period
    versions: list[usage.VersionInUse]
    adoption: list[adoption.RevisionAdoption]


def dashboard(session: Session, now: datetime, period: str, product: str | None) -> Dashboard:
    """The dashboard at ``now``; an unknown ``period`` or ``product`` falls back to the default
    (daily, every product) rather than failing: they come from a query string."""
    products = list(session.scalars(select(Product.slug).order_by(Product.slug)))
    period = period if period in usage.PERIODS else "days"
    product = product if product in products else None
    return Dashboard(
        totals=totals(session),
        products=products,
        period=period,
        product=product,
        series=usage.downloads_over(session, now.date(), period, product),
        versions=usage.versions_in_use(session),
        adoption=adoption.security_adoption(session, now),
    )


def totals(session: Session) -> Totals:
    """How many published releases, licenses, installations and downloads there are."""

    def count(query: Select[int]) -> int:
        return session.scalar(query) or 0

    return Totals(
        releases=count(select(func.count()).where(Release.published_at.is_not(None))),
        licenses=count(select(func.count()).select_from(License)),
        installations=count(select(func.count()).select_from(Installation)),
        downloads=count(select(func.count()).select_from(DownloadEvent)),
    )


@dataclass(frozen=True)
class ReleaseActivity:
    """What installations did with one release."""

    reports: dict[str, int]  # apply outcome → reports
    downloads: int

    @property
    def failure_rate(self) -> float | None:
        """Failed or rolled-back applies among all reported, or None before any report."""
        total = sum(self.reports.values())
        failed = self.reports.get(ApplyOutcome.FAILURE, 0) + self.reports.get(
            ApplyOutcome.ROLLED_BACK, 0
        )
        return failed / total if total else None


def release_activity(session: Session, release: Release) -> ReleaseActivity:
    """Apply reports by outcome and downloads of ``release``'s artifacts (two queries)."""
    reports = dict(
        session.execute(
            select(ApplyReport.outcome, func.count())
            .where(ApplyReport.release_id == release.id)
            .group_by(ApplyReport.outcome)
        ).all()
    )
    downloads = (
        session.scalar(
            select(func.count())
            .select_from(DownloadEvent)
            .where(DownloadEvent.artifact_id.in_([a.id for a in release.artifacts]))
        )
        or 0
    )
    return ReleaseActivity(reports={str(k): v for k, v in reports.items()}, downloads=downloads)
