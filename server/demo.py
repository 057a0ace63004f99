"""Demo data: one product with a realistic history, and customers in every maintenance state.

Dates are relative to the day the demo is first loaded, so the story reads the same whenever it
runs: some customers are active, one is expiring, one lapsed months ago, one never bought
maintenance, and one has a customized build under a customization contract. Loading is
idempotent: a second run finds the product and changes nothing.

The installed base has a history too, so that the dashboard has something to show: each
customer's installations (:data:`FLEETS`) walk through the releases they were entitled to, some
applying security revisions within the deadline, some late, a few stuck on an old version or
gone silent, with the downloads and apply reports that leaves behind. A seeded random generator
makes the history the same on every load.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bootstrap import ensure_trust
from server.domain import customers, portal_users, products, publishing, users
from server.domain.facts import DEFAULT_DEADLINES
from server.domain.models import (
    AdminUser,
    ApplyReport,
    DownloadEvent,
    Installation,
    License,
    Product,
    Release,
    utcnow,
)
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    ApplyOutcome,
    ContractKind,
    LineStatus,
    ReleaseKind,
    Role,
    Severity,
)
from server.services import Services

PRODUCT = "acme-erp"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "vigor-demo-admin"  # noqa: S105 - printed by the demo; production refuses demo mode
# A person at Hooli (lapsed maintenance, reads Spanish) who signs in to the portal.
PORTAL_CUSTOMER = "hooli"
PORTAL_EMAIL = "it@hooli.example"
PORTAL_PASSWORD = "vigor-demo-portal"  # noqa: S105 - printed by the demo, like the admin's
ACTOR = "demo"


@dataclass(frozen=True)
class DemoRelease:
    version: str
    kind: ReleaseKind
    days_ago: int
    severity: Severity | None = None
    notes: str = ""
    channel: str = DEFAULT_CHANNEL
    customers: tuple[str, ...] = ()
    min_from: str | None = None


HISTORY = (
    DemoRelease("3.8.0", ReleaseKind.VERSION, 900, notes="Multi-currency invoicing."),
    DemoRelease("3.9.0", ReleaseKind.UPDATE, 700, notes="Faster month-end closing."),
    DemoRelease("4.0.0", ReleaseKind.VERSION, 560, notes="New inventory module and web client."),
    DemoRelease("4.0.1", ReleaseKind.UPDATE, 500, notes="Fixes to stock valuation reports."),
    DemoRelease("4.1.0", ReleaseKind.UPDATE, 400, notes="Bank reconciliation import (CAMT.053)."),
    DemoRelease(
        "4.1.1",
        ReleaseKind.SECURITY,
        330,
        Severity.CRITICAL,
        "Fixes an authentication bypass in the web client (critical: the application "
        "cannot be used safely until applied).",
    ),
    DemoRelease("4.2.0", ReleaseKind.UPDATE, 240, notes="Purchase approval workflow."),
    DemoRelease(
        "4.2.0+globex.1",
        ReleaseKind.UPDATE,
        230,
        notes="Globex customs-declaration export.",
        channel="globex",
        customers=("globex",),
    ),
    DemoRelease(
        "4.2.1",
        ReleaseKind.SECURITY,
        150,
        Severity.SERIOUS,
        "Fixes a privilege escalation in the payroll module (serious).",
    ),
    DemoRelease(
        "4.3.0", ReleaseKind.UPDATE, 90, notes="Payroll for part-time contracts.", min_from="4.1.0"
    ),
    DemoRelease("5.0.0", ReleaseKind.VERSION, 40, notes="New reporting engine and REST API."),
    DemoRelease(
        "5.0.1",
        ReleaseKind.SECURITY,
        6,
        Severity.MINOR,
        "Fixes a cross-site scripting issue in report titles.",
    ),
)


@dataclass(frozen=True)
class DemoCustomer:
    slug: str
    name: str
    # (kind, starts days from today, ends days from today); negative = in the past
    contracts: tuple[tuple[ContractKind, int, int], ...]
    language: str = ""  # "": each reader's browser or agent decides


CUSTOMERS = (
    DemoCustomer("initech", "Initech", ((ContractKind.MAINTENANCE, -800, 300),)),
    DemoCustomer("umbrella", "Umbrella Corporation", ((ContractKind.MAINTENANCE, -353, 12),)),
    DemoCustomer("hooli", "Hooli", ((ContractKind.MAINTENANCE, -900, -300),), language="es"),
    DemoCustomer("vandelay", "Vandelay Industries", ()),
    DemoCustomer(
        "globex",
        "Globex",
        ((ContractKind.MAINTENANCE, -500, 200), (ContractKind.CUSTOMIZATION, -500, 200)),
    ),
)


@dataclass(frozen=True)
class Fleet:
    """A customer's installations and how diligently they are kept up to date."""

    customer: str
    size: int
    on_time: float  # chance that a security revision is applied within its deadline
    takes_versions: float  # chance of moving to a new major version
    stuck: int = 0  # installations that stop updating at some point (but keep checking in)
    silent: int = 0  # installations that stop checking in at some point
    channel: str = DEFAULT_CHANNEL
    platforms: tuple[str, ...] = ("linux-x86_64", "windows-x86_64")


FLEETS = (
    Fleet("initech", 14, on_time=0.9, takes_versions=0.8, stuck=1, silent=1),
    Fleet("umbrella", 8, on_time=0.55, takes_versions=0.5, stuck=2),
    Fleet("hooli", 5, on_time=0.7, takes_versions=0.6, platforms=("windows-x86_64",)),
    Fleet("vandelay", 2, on_time=0.0, takes_versions=0.0, platforms=("linux-x86_64",)),
    Fleet("globex", 4, on_time=0.95, takes_versions=1.0, channel="globex"),
)


@dataclass
class DemoReport:
    created: bool
    licenses: dict[str, str] = field(default_factory=dict)
    license_file: Path | None = None

    def describe(self, base: str) -> str:
        lines = [
            "",
            "Vigor demo",
            f"  Health:        {base}/healthz",
            f"  Root of trust: {base}/api/v1/root.json",
            f"  API docs:      {base}/api/v1/openapi.json",
            f"  Update checks: POST {base}/api/v1/check  (Authorization: License <key>)",
            f"  Admin web:     {base}/admin/   ({ADMIN_EMAIL} / {ADMIN_PASSWORD})",
            f"  Portal:        {base}/portal/  ({PORTAL_EMAIL} / {PORTAL_PASSWORD}, "
            "or a license key below)",
        ]
        if self.created:
            lines.append(
                "  Demo licenses (shown once; also saved for the demo only in "
                f"{self.license_file}):"
            )
            lines += [f"    {slug:10} {key}" for slug, key in self.licenses.items()]
        else:
            lines.append(
                f"  Demo data already loaded; the demo license keys are in {self.license_file}"
            )
        return "\n".join(lines) + "\n"


def demo_archive(version: str) -> bytes:
    """A small, deterministic .tar.gz of an application: a launcher, a library, data."""
    files = {
        "VERSION": f"{version}\n".encode(),
        "bin/acme-erp": (
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "acme-erp {version}"; exit 0; fi\n'
            f'echo "Acme ERP {version} is running"\n'
        ).encode(),
        "lib/acme/core.py": (f"VERSION = {version!r}\n" + "# ledger rules\n" * 200).encode(),
        "share/acme/reports.csv": "".join(f"report-{i},{version}\n" for i in range(500)).encode(),
        # The bulk of a real application, unchanged between releases: what delta patches skip.
        **{
            f"lib/acme/modules/ledger_{n:02d}.py": "".join(
                f"def rule_{n}_{i}(entry):\n    return entry.amount * {(n * 7919 + i * 104729) % 1000} / 1000\n"
                for i in range(60)
            ).encode()
            for n in range(40)
        },
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"acme-erp-{version}/{name}")
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _at(today: date, days_ago: int) -> datetime:
    return datetime.combine(today - timedelta(days=days_ago), time(9, 0), tzinfo=UTC)


def load_demo(services: Services, today: date | None = None) -> DemoReport:
    """Initialise the instance and load the demo data once."""
    services.db.upgrade()
    ensure_trust(services)
    license_file = services.settings.instance_dir / "demo-licenses.json"
    with services.db.session() as session:
        if session.scalar(select(Product.id).where(Product.slug == PRODUCT)) is not None:
            return DemoReport(created=False, license_file=license_file)
    today = today or datetime.now(UTC).date()
    report = DemoReport(created=True, license_file=license_file)
    work = services.settings.instance_dir / "demo-build"
    work.mkdir(parents=True, exist_ok=True)
    signer = services.signer("release")
    with services.db.sessions() as session:
        product = products.add_product(
            session,
            PRODUCT,
            "Acme ERP",
            actor=ACTOR,
            renewal_url="https://vendor.example/renew?product=acme-erp",
        )
        for c in CUSTOMERS:
            customer = customers.add_customer(
                session,
                c.slug,
                c.name,
                actor=ACTOR,
                email=f"it@{c.slug}.example",
                language=c.language,
            )
            for kind, start, end in c.contracts:
                customers.add_contract(
                    session,
                    customer,
                    kind,
                    today + timedelta(days=start),
                    today + timedelta(days=end),
                    actor=ACTOR,
                    product=product,
                )
            _, key = customers.issue_license(session, customer, product, actor=ACTOR, label="demo")
            report.licenses[c.slug] = key
        for r in HISTORY:
            path = work / f"{PRODUCT}-{r.version}.tar.gz"
            path.write_bytes(demo_archive(r.version))
            spec = publishing.ReleaseSpec(
                product=PRODUCT,
                version=r.version,
                kind=r.kind,
                severity=r.severity,
                channel=r.channel,
                notes=r.notes,
                min_from=r.min_from,
                published_at=_at(today, r.days_ago),
                customers=r.customers,
                platforms=("any",),
            )
            published = publishing.publish(
                session,
                services.store,
                signer,
                spec,
                [publishing.PathArtifact("any", path)],
                actor=ACTOR,
                max_size=services.settings.max_upload_bytes,
            )
            services.make_patches(published.id)
        products.set_line_status(session, product, "3.x", LineStatus.END_OF_LIFE, actor=ACTOR)
        _installed_base(session, today)
        if session.scalar(select(AdminUser.id).where(AdminUser.email == ADMIN_EMAIL)) is None:
            users.add_user(session, ADMIN_EMAIL, ADMIN_PASSWORD, role=Role.ADMIN, actor=ACTOR)
        _portal_user(session, services.settings.secret_key)
    fd = os.open(license_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(report.licenses, handle, indent=2)
    return report


def _portal_user(session: Session, secret_key: str) -> None:
    """The demo's portal user, invited and with the password set, as the customer would."""
    now = utcnow()
    invitation = portal_users.invite(
        session,
        customers.get_customer(session, PORTAL_CUSTOMER),
        PORTAL_EMAIL,
        secret_key=secret_key,
        actor=ACTOR,
        now=now,
    )
    portal_users.set_password_with_link(
        session, secret_key, invitation.token, PORTAL_PASSWORD, now=now
    )


# --------------------------------------------------------------------------- installed base


def _covered(customer: DemoCustomer, days_ago: int) -> bool:
    return any(
        kind == ContractKind.MAINTENANCE and start <= -days_ago <= end
        for kind, start, end in customer.contracts
    )


def _installed_base(session: Session, today: date) -> None:
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
