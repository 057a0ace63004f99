"""Maintenance across the customer base, for the vendor: who is covered for which product, whose
maintenance ends soon, and who lapsed but still runs the product.

One customer's status for one product is the entitlement engine's
(:func:`server.domain.maintenance_status`) for a license in good standing: the
vendor asks about the contracts, not about one key. The overview reads the whole customer base
in a fixed number of queries, however many customers there are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.domain.coverage import MaintenanceStatus, maintenance_status
from server.domain.facts import LicenseFacts
from server.domain.models import Contract, Customer, Installation, License, Product
from server.domain.row_facts import contract_facts, product_policy
from server.domain.vocabulary import LicenseStatus, Maintenance

# "Renewals due": maintenance that ends within this many days from today (the vendor's sales
# horizon; a product's own "expiring" window, shown to its customers, may be shorter or longer).
RENEWALS_DUE_DAYS = 30


def maintenance_of(
    customer: Customer, product: Product, now: datetime, renewal_url: str
) -> MaintenanceStatus:
    """``customer``'s maintenance status for ``product`` at ``now``."""
    facts = LicenseFacts(
        LicenseStatus.ACTIVE,
        product.slug,
        customer.slug,
        tuple(contract_facts(c) for c in customer.contracts),
    )
    return maintenance_status(facts, product_policy(product, renewal_url), now)


@dataclass(frozen=True)
class CustomerMaintenance:
    """One customer and one product they hold a license for."""

    customer: Customer
    product: Product
    status: MaintenanceStatus
    running: tuple[str, ...] = ()  # versions their installations of the product last reported


@dataclass(frozen=True)
class MaintenanceOverview:
    """The customer base at one instant."""

    rows: list[CustomerMaintenance]  # by customer name, then in license order
    unlicensed: list[Customer]  # customers without any license yet
    renewals_due: list[CustomerMaintenance]  # active, ending within RENEWALS_DUE_DAYS
    lapsed_running: list[CustomerMaintenance]  # lapsed, with installations still reporting


def overview(session: Session, now: datetime, renewal_url: str) -> MaintenanceOverview:
    """Every customer's maintenance per licensed product, what is due for renewal and who
    lapsed but still runs the product (a fixed number of queries)."""
    customers = session.scalars(
        select(Customer)
        .order_by(Customer.name)
        .options(
            selectinload(Customer.licenses).selectinload(License.product),
            selectinload(Customer.contracts).selectinload(Contract.product),
        )
    ).all()
    running = _versions_running(session)
    rows: list[CustomerMaintenance] = []
    unlicensed: list[Customer] = []
    for customer in customers:
        products = {lic.product.slug: lic.product for lic in customer.licenses}
        if not products:
            unlicensed.append(customer)
        for product in products.values():
            rows.append(
                CustomerMaintenance(
                    customer,
                    product,
                    maintenance_of(customer, product, now, renewal_url),
                    running.get((customer.id, product.id), ()),
                )
            )
    today = now.date()
    due_by = today + timedelta(days=RENEWALS_DUE_DAYS)
    return MaintenanceOverview(
        rows=rows,
        unlicensed=unlicensed,
        renewals_due=[
            row
            for row in rows
            if row.status.status in {Maintenance.ACTIVE, Maintenance.EXPIRING}
            and row.status.maintenance_ends_on is not None
            and today <= row.status.maintenance_ends_on <= due_by
        ],
        lapsed_running=[
            row for row in rows if row.status.status == Maintenance.LAPSED and row.running
        ],
    )


def _versions_running(session: Session) -> dict[tuple[int, int], tuple[str, ...]]:
    """(customer id, product id) → the versions their installations last reported, sorted."""
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    for customer_id, product_id, version in session.execute(
        select(License.customer_id, License.product_id, Installation.version)
        .join(Installation, Installation.license_id == License.id)
        .distinct()
    ):
        found[(customer_id, product_id)].add(version)
    return {key: tuple(sorted(versions)) for key, versions in found.items()}
