"""What the installed base does: downloads over time and the versions it runs.

Downloads are counted per UTC day by the database (one aggregate query bounded to the window,
on SQLite and PostgreSQL alike); days without downloads are filled in as zero here. A download
resumed with a ``Range`` request is the same download: only transfers from byte 0 count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from packaging.version import InvalidVersion, Version
from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from server.domain.models import Artifact, DownloadEvent, Installation, License, Product, Release

PERIODS = {"days": 30, "weeks": 12}  # the windows the dashboard offers


@dataclass(frozen=True)
class Bucket:
    """Downloads in one day or one week (``starts_on`` .. ``ends_on``, both inclusive)."""

    starts_on: date
    ends_on: date
    downloads: int


def _utc_day(session: Session) -> ColumnElement[object]:
    """The UTC calendar day of a download, in SQL.

    SQLite stores the naive UTC text, so ``date()`` is the UTC day; PostgreSQL's ``date`` of a
    ``timestamptz`` would use the session's time zone, so convert to UTC first.
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", DownloadEvent.at), Date)
    return func.date(DownloadEvent.at)


def downloads_per_day(
    session: Session, first: date, last: date, product: str | None = None
) -> list[Bucket]:
    """Downloads on every UTC day from ``first`` to ``last`` (inclusive), zeros included."""
    day = _utc_day(session)
    query = (
        select(day, func.count())
        .where(
            DownloadEvent.at >= datetime.combine(first, time.min, tzinfo=UTC),
            DownloadEvent.at < datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
            DownloadEvent.range_start == 0,
        )
        .group_by(day)
    )
    if product is not None:
        query = (
            query.join(Artifact, Artifact.id == DownloadEvent.artifact_id)
            .join(Release, Release.id == Artifact.release_id)
            .join(Product, Product.id == Release.product_id)
            .where(Product.slug == product)
        )
    counts: dict[date, int] = {}
    for value, n in session.execute(query):
        # SQLite answers "2026-05-01"; PostgreSQL a date.
        counts[value if isinstance(value, date) else date.fromisoformat(str(value))] = n
    span = (last - first).days + 1
    return [
        Bucket(d, d, counts.get(d, 0)) for d in (first + timedelta(days=i) for i in range(span))
    ]


def downloads_over(
    session: Session, today: date, period: str = "days", product: str | None = None
) -> list[Bucket]:
    """The dashboard's series: the last 30 UTC days (today included), or the last 12 weeks
    (Monday to Sunday, the current week so far included)."""
    if period == "weeks":
        monday = today - timedelta(days=today.weekday())
        first = monday - timedelta(weeks=PERIODS["weeks"] - 1)
        daily = downloads_per_day(session, first, today, product)
        return weekly(daily)
    return downloads_per_day(session, today - timedelta(days=PERIODS["days"] - 1), today, product)


def weekly(daily: Sequence[Bucket]) -> list[Bucket]:
    """Daily buckets summed into weeks starting on Monday; a week the days cover only in part
    spans just those days."""
    weeks: dict[date, list[Bucket]] = defaultdict(list)
    for bucket in daily:
        weeks[bucket.starts_on - timedelta(days=bucket.starts_on.weekday())].append(bucket)
    return [
        Bucket(days[0].starts_on, days[-1].ends_on, sum(b.downloads for b in days))
        for _, days in sorted(weeks.items())
    ]


@dataclass(frozen=True)
class VersionInUse:
    product: str
    version: str
    installations: int
    share: float  # of the product's installations


def versions_in_use(session: Session) -> list[VersionInUse]:
    """Installations per product and version: products by name, newest version first."""
    rows = session.execute(
        select(Product.slug, Installation.version, func.count())
        .join(License, License.id == Installation.license_id)
        .join(Product, Product.id == License.product_id)
        .group_by(Product.slug, Installation.version)
    ).all()
    totals: dict[str, int] = defaultdict(int)
    for slug, _, n in rows:
        totals[slug] += n
    ordered = sorted(rows, key=lambda r: (r[0], _sort_key(r[1])), reverse=True)
    ordered.sort(key=lambda r: r[0])  # stable: products ascending, versions still descending
    return [VersionInUse(slug, version, n, n / totals[slug]) for slug, version, n in ordered]


def _sort_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)
