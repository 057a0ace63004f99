"""The vendor's view of maintenance across customers (server/domain/maintenance.py), on both
databases: renewals due, lapsed customers still running the product, in a fixed number of
queries however many customers there are."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event, select

from server.domain import maintenance
from server.domain.models import Installation, License
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
TODAY = NOW.date()


def _installed(services: Services, key_prefix_customer: str, product: str, version: str) -> None:
    """An installation of ``version`` on the license of ``key_prefix_customer`` for ``product``."""
    with services.db.session() as s:
        lic = s.scalar(
            select(License).where(
                License.customer.has(slug=key_prefix_customer),
                License.product.has(slug=product),
            )
        )
        assert lic is not None
        s.add(
            Installation(
                license_id=lic.id,
                uid=f"inst-{key_prefix_customer}-{product}-{version}".ljust(16, "x"),
                version=version,
                platform="linux-x86_64",
                channel="stable",
                first_seen=NOW,
                last_seen=NOW,
            )
        )


def _customers(services: Services) -> None:
    make_product(services)
    make_product(services, "acme-crm")
    maintenance_until = {
        "soon": TODAY + timedelta(days=10),
        "edge": TODAY + timedelta(days=maintenance.RENEWALS_DUE_DAYS),
        "later": TODAY + timedelta(days=maintenance.RENEWALS_DUE_DAYS + 1),
        "lapsed": TODAY - timedelta(days=40),
        "idle": TODAY - timedelta(days=40),
    }
    for slug, ends in maintenance_until.items():
        make_customer(services, slug, ("maintenance", date(2025, 1, 1), ends))
        make_license(services, slug)
    make_license(services, "lapsed", "acme-crm")  # no contract for it: "none", never "running"
    make_customer(services, "unlicensed", ("maintenance", date(2025, 1, 1), date(2027, 1, 1)))
    _installed(services, "lapsed", "acme-erp", "4.1.0")
    _installed(services, "lapsed", "acme-erp", "3.9.2")
    _installed(services, "lapsed", "acme-crm", "1.0.0")  # another product: not acme-erp's
    _installed(services, "soon", "acme-erp", "4.2.0")


def test_renewals_due_and_lapsed_customers_still_running(services: Services) -> None:
    _customers(services)
    with services.db.sessions() as s:
        found = maintenance.overview(s, NOW, "https://vendor.example/renew")
        rows = [(r.customer.slug, r.product.slug, r.status.status) for r in found.rows]
        assert rows == [
            ("edge", "acme-erp", "active"),  # due within 30 days, not yet in the 30-day warning
            ("idle", "acme-erp", "lapsed"),
            ("lapsed", "acme-erp", "lapsed"),
            ("lapsed", "acme-crm", "none"),
            ("later", "acme-erp", "active"),
            ("soon", "acme-erp", "expiring"),
        ]
        assert [r.customer.slug for r in found.renewals_due] == ["edge", "soon"]
        running = [(r.customer.slug, r.product.slug, r.running) for r in found.lapsed_running]
        assert running == [("lapsed", "acme-erp", ("3.9.2", "4.1.0"))]
        assert [c.slug for c in found.unlicensed] == ["unlicensed"]


def test_the_overview_reads_a_fixed_number_of_queries(services: Services) -> None:
    make_product(services)

    def statements_for(customers: int) -> int:
        for n in range(customers):
            slug = f"c{customers}-{n}"
            make_customer(services, slug, ("maintenance", date(2025, 1, 1), date(2026, 12, 31)))
            make_license(services, slug)
        seen: list[str] = []

        def _count(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(services.db.engine, "before_cursor_execute", _count)
        try:
            with services.db.sessions() as s:
                maintenance.overview(s, NOW, "")
        finally:
            event.remove(services.db.engine, "before_cursor_execute", _count)
        return len(seen)

    few = statements_for(2)
    many = statements_for(10)  # 12 customers in all
    assert few == many, "one query per customer crept back in"
