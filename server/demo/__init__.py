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

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bootstrap import ensure_trust
from server.demo.data import (
    ACTOR,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CUSTOMERS,
    HISTORY,
    PORTAL_CUSTOMER,
    PORTAL_EMAIL,
    PORTAL_PASSWORD,
    PRODUCT,
    demo_archive,
)
from server.demo.fleet import installed_base
from server.domain import customers, jobs, portal_users, products, publishing, users
from server.domain.models import AdminUser, Product, utcnow
from server.domain.vocabulary import JobKind, LineStatus, Role
from server.services import Services

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "PORTAL_EMAIL",
    "PORTAL_PASSWORD",
    "DemoReport",
    "ask_for_reminders",
    "demo_archive",
    "load_demo",
]


@dataclass
class DemoReport:
    created: bool
    licenses: dict[str, str] = field(default_factory=dict)
    license_file: Path | None = None

    def describe(
        self, base: str, worker_pid: int | None = None, mail_folder: Path | None = None
    ) -> str:
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
        if worker_pid is not None:
            lines.append(
                f"  Worker:        background jobs (delta patches, e-mail, webhooks) in process {worker_pid}; "
                f"queue at {base}/admin/jobs"
            )
        if mail_folder is not None:
            lines.append(
                f"  E-mail:        caught by a local SMTP server, one .eml file per message in "
                f"{mail_folder}; the log at {base}/admin/emails"
            )
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


def ask_for_reminders(services: Services) -> None:
    """Queue a renewal-reminders scan now (the worker otherwise scans every hour)."""
    with services.db.sessions() as session:
        jobs.enqueue(session, JobKind.REMINDERS_SCAN, "reminders_scan", {})
        session.commit()


def _at(today: date, days_ago: int) -> datetime:
    return datetime.combine(today - timedelta(days=days_ago), time(9, 0), tzinfo=UTC)


def load_demo(services: Services, today: date | None = None) -> DemoReport:
    """Initialise the instance and load the demo data once."""
    services.db.upgrade(secret_key=services.settings.secret_key)
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
            # A per-customer link: filled in for each license (server/domain/renewal_links.py).
            renewal_url="https://vendor.example/renew?product={product}&customer={customer}"
            "&license={license}&ends={ends_on}",
        )
        for c in CUSTOMERS:
            customer = customers.add_customer(
                session,
                c.slug,
                c.name,
                actor=ACTOR,
                contact_emails=[f"it@{c.slug}.example"],
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
        installed_base(session, today)
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
