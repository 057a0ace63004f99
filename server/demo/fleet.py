"""The demo's installed base: installations that walk through the releases their customer was
entitled to, applying security revisions on time or late, a few stuck or gone silent, with the
downloads and apply reports that leaves behind (a seeded generator: the same on every load)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.demo.data import CUSTOMERS, FLEETS, HISTORY, PRODUCT, DemoCustomer, Fleet
from server.domain.facts import DEFAULT_DEADLINES
from server.domain.models import ApplyReport, DownloadEvent, Installation, License, Release
from server.domain.vocabulary import DEFAULT_CHANNEL, ApplyOutcome, ContractKind, ReleaseKind


def _covered(customer: DemoCustomer, days_ago: int) -> bool:
    return any(
        kind == ContractKind.MAINTENANCE and start <= -days_ago <= end
        for kind, start, end in customer.contracts
    )


def installed_base(session: Session, today: date) -> None:
    """Installations of every :data:`FLEETS` customer, with their apply reports and downloads."""
    rng = random.Random(5)  # noqa: S311 - demo data, not security
    # The history ends at the start of ``today`` (UTC), so it is the same whatever the time of
    # day the demo is loaded; only today's downloads so far depend on the clock.
    now = datetime.combine(today, time.min, tzinfo=UTC)
    clock = min(datetime.now(UTC), now + timedelta(days=1))
    rows = {r.version: r for r in session.scalars(select(Release))}
    artifacts = {v: r.artifacts[0].id for v, r in rows.items()}
    customers_by_slug = {c.slug: c for c in CUSTOMERS}
    licenses = {
        lic.customer.slug: lic.id
        for lic in session.scalars(select(License).where(License.product.has(slug=PRODUCT)))
    }
    for fleet in FLEETS:
        customer = customers_by_slug[fleet.customer]
        license_id = licenses[fleet.customer]
        for n in range(fleet.size):
            stuck = n < fleet.stuck
            silent = fleet.stuck <= n < fleet.stuck + fleet.silent
            _one_installation(
                session,
                rng,
                fleet,
                customer,
                license_id,
                rows,
                artifacts,
                now,
                stops=rng.randint(20, 200) if stuck or silent else None,
                silent=silent,
            )
    _background_downloads(session, rng, now, clock, licenses, artifacts)


def _one_installation(
    session: Session,
    rng: random.Random,
    fleet: Fleet,
    customer: DemoCustomer,
    license_id: int,
    rows: dict[str, Release],
    artifacts: dict[str, int],
    now: datetime,
    *,
    stops: int | None,
    silent: bool,
) -> None:
    """Walk one installation through the releases it could take, oldest first."""
    uid = f"{fleet.customer}-{rng.getrandbits(64):016x}"
    first_seen = now - timedelta(days=rng.randint(60, 720), hours=rng.randint(0, 23))
    stops_at = now - timedelta(days=stops) if stops is not None else now
    available = [
        r
        for r in HISTORY
        if r.channel in (DEFAULT_CHANNEL, fleet.channel)
        and (not r.customers or fleet.customer in r.customers)
    ]
    published = {r.version: rows[r.version].published_at or now for r in available}
    starting = [  # what was bought or installed: a release the customer could have then
        r
        for r in available
        if published[r.version] <= first_seen
        and r.kind != ReleaseKind.SECURITY
        and (
            _covered(customer, (now.date() - published[r.version].date()).days)
            or not customer.contracts
        )
    ]
    current = Version(starting[-1].version if starting else "3.8.0")
    last = first_seen
    for r in available:
        at = published[r.version]
        target = Version(r.version)
        if (
            at <= first_seen
            or target <= current
            or not _covered(customer, (now.date() - at.date()).days)
        ):
            continue
        if r.min_from and current < Version(r.min_from):
            continue
        if r.kind == ReleaseKind.VERSION and rng.random() >= fleet.takes_versions:
            continue
        if r.kind == ReleaseKind.UPDATE and rng.random() < 0.15:
            continue  # skipped; a later release brings it
        if r.severity is not None:
            hours = DEFAULT_DEADLINES[r.severity]  # the demo product keeps the defaults
            on_time = rng.random() < fleet.on_time
            delay = hours * rng.uniform(0.1, 0.9) if on_time else hours + rng.uniform(2, 240)
        else:
            delay = rng.uniform(12, 24 * 30)
        applied_at = max(at + timedelta(hours=delay), last + timedelta(minutes=30))
        if applied_at >= stops_at or applied_at >= now - timedelta(hours=1):
            break
        if rng.random() < 0.08:  # a first attempt that failed and was rolled back
            _report(
                session,
                license_id,
                uid,
                rows[r.version],
                current,
                applied_at,
                ApplyOutcome.ROLLED_BACK,
            )
            applied_at += timedelta(hours=rng.uniform(1, 6))
        session.add(
            DownloadEvent(
                at=applied_at - timedelta(minutes=rng.randint(2, 40)),
                license_id=license_id,
                artifact_id=artifacts[r.version],
            )
        )
        _report(
            session, license_id, uid, rows[r.version], current, applied_at, ApplyOutcome.SUCCESS
        )
        current, last = target, applied_at
    session.add(
        Installation(
            license_id=license_id,
            uid=uid,
            version=str(current),
            platform=rng.choice(fleet.platforms),
            channel=fleet.channel,
            first_seen=first_seen,
            last_seen=stops_at if silent else now - timedelta(hours=rng.uniform(1, 30)),
        )
    )


def _report(
    session: Session,
    license_id: int,
    uid: str,
    release: Release,
    from_version: Version,
    at: datetime,
    outcome: ApplyOutcome,
) -> None:
    session.add(
        ApplyReport(
            at=at,
            license_id=license_id,
            installation_uid=uid,
            release_id=release.id,
            from_version=str(from_version),
            outcome=outcome,
            code=None if outcome == ApplyOutcome.SUCCESS else "health_check_failed",
            message=None
            if outcome == ApplyOutcome.SUCCESS
            else "the new version did not start; rolled back",
        )
    )


def _background_downloads(
    session: Session,
    rng: random.Random,
    today: datetime,
    clock: datetime,
    licenses: dict[str, int],
    artifacts: dict[str, int],
) -> None:
    """Downloads that are not updates (new machines, evaluations, resumed transfers) over the
    last twelve weeks and today so far (``today`` is its first instant): busier on working
    days."""
    entitled = [licenses[c] for c in ("initech", "umbrella", "globex")]
    recent = ["5.0.0", "5.0.1", "4.3.0"]
    for days_ago in range(84):
        day = today - timedelta(days=days_ago)
        busy = day.weekday() < 5
        for _ in range(rng.randint(2, 7) if busy else rng.randint(0, 2)):
            at = day + timedelta(minutes=rng.randint(7 * 60, 19 * 60))
            if at >= clock:
                continue
            session.add(
                DownloadEvent(
                    at=at,
                    license_id=rng.choice(entitled),
                    artifact_id=artifacts[rng.choice(recent)],
                    range_start=rng.choice((0, 0, 0, 0, 1 << 20)),
                )
            )
