"""Demo data: one product with a realistic history, and customers in every maintenance state.

Dates are relative to the day the demo is first loaded, so the story reads the same whenever it
runs: some customers are active, one is expiring, one lapsed months ago, one never bought
maintenance, and one has a customized build under a customization contract. Loading is
idempotent: a second run finds the product and changes nothing.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from server.bootstrap import ensure_trust
from server.domain import catalog, customers, releases, users
from server.domain.models import AdminUser, Product
from server.services import Services

PRODUCT = "acme-erp"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "vigor-demo-admin"  # noqa: S105 - printed by the demo; production refuses demo mode
ACTOR = "demo"


@dataclass(frozen=True)
class DemoRelease:
    version: str
    kind: str
    days_ago: int
    severity: str | None = None
    notes: str = ""
    channel: str = "stable"
    customers: tuple[str, ...] = ()
    min_from: str | None = None


HISTORY = (
    DemoRelease("3.8.0", "version", 900, notes="Multi-currency invoicing."),
    DemoRelease("3.9.0", "update", 700, notes="Faster month-end closing."),
    DemoRelease("4.0.0", "version", 560, notes="New inventory module and web client."),
    DemoRelease("4.0.1", "update", 500, notes="Fixes to stock valuation reports."),
    DemoRelease("4.1.0", "update", 400, notes="Bank reconciliation import (CAMT.053)."),
    DemoRelease(
        "4.1.1",
        "security",
        330,
        "critical",
        "Fixes an authentication bypass in the web client (critical: the application "
        "cannot be used safely until applied).",
    ),
    DemoRelease("4.2.0", "update", 240, notes="Purchase approval workflow."),
    DemoRelease(
        "4.2.0+globex.1",
        "update",
        230,
        notes="Globex customs-declaration export.",
        channel="globex",
        customers=("globex",),
    ),
    DemoRelease(
        "4.2.1",
        "security",
        150,
        "serious",
        "Fixes a privilege escalation in the payroll module (serious).",
    ),
    DemoRelease("4.3.0", "update", 90, notes="Payroll for part-time contracts.", min_from="4.1.0"),
    DemoRelease("5.0.0", "version", 40, notes="New reporting engine and REST API."),
    DemoRelease(
        "5.0.1", "security", 6, "minor", "Fixes a cross-site scripting issue in report titles."
    ),
)


@dataclass(frozen=True)
class DemoCustomer:
    slug: str
    name: str
    # (kind, starts days from today, ends days from today); negative = in the past
    contracts: tuple[tuple[str, int, int], ...]
    language: str = ""  # "": each reader's browser or agent decides


CUSTOMERS = (
    DemoCustomer("initech", "Initech", (("maintenance", -800, 300),)),
    DemoCustomer("umbrella", "Umbrella Corporation", (("maintenance", -353, 12),)),
    DemoCustomer("hooli", "Hooli", (("maintenance", -900, -300),), language="es"),
    DemoCustomer("vandelay", "Vandelay Industries", ()),
    DemoCustomer("globex", "Globex", (("maintenance", -500, 200), ("customization", -500, 200))),
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
        product = catalog.add_product(
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
            spec = releases.ReleaseSpec(
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
            published = releases.publish(
                session,
                services.store,
                signer,
                spec,
                [releases.PathArtifact("any", path)],
                actor=ACTOR,
                max_size=services.settings.max_upload_bytes,
            )
            services.make_patches(published.id)
        catalog.set_line_status(session, product, "3.x", "end-of-life", actor=ACTOR)
        if session.scalar(select(AdminUser.id).where(AdminUser.email == ADMIN_EMAIL)) is None:
            users.add_user(session, ADMIN_EMAIL, ADMIN_PASSWORD, role="admin", actor=ACTOR)
    fd = os.open(license_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(report.licenses, handle, indent=2)
    return report
