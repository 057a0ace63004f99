"""The vendor's lists, filtered, sorted and paged: customers with their maintenance, every
license, contracts ending or lapsed, lapsed customers still running the product, and
installations, and releases. (The audit log's pages are :func:`server.domain.audit.events`.)

Each list is one function: the filters as keyword arguments and a :class:`Window` in, a
:class:`Page` out, in a bounded number of queries. A CSV export reads the same function page
after page (:func:`server.domain.paging.every_row`), so it holds exactly the rows shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from server.domain.coverage import MaintenanceStatus
from server.domain.customers import installation_counts
from server.domain.list_filters import (
    contains,
    contracts_matching,
    customer_maintenance,
    customers_matching,
    has_maintenance,
    licenses_matching,
)
from server.domain.maintenance import CustomerMaintenance, overview
from server.domain.models import Contract, Customer, Installation, License, Product, Release
from server.domain.paging import EXPORT_BATCH, Page, Window, order, page_of, page_of_list
from server.domain.vocabulary import (
    ContractState,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
    ReleaseState,
)


@dataclass(frozen=True)
class CustomerRow:
    """A customer, and their maintenance for each product they hold a license for."""

    customer: Customer
    maintenance: list[tuple[Product, MaintenanceStatus]]
    licenses: int


CUSTOMER_SORTS = {"name": Customer.name, "slug": Customer.slug, "added": Customer.created_at}


def _with_maintenance_loaded(query: Select[Customer]) -> Select[Customer]:
    return query.options(
        selectinload(Customer.licenses).selectinload(License.product),
        selectinload(Customer.contracts).selectinload(Contract.product),
    )


def customers(
    session: Session,
    window: Window,
    *,
    search: str = "",
    now: datetime,
    renewal_url: str,
    maintenance: Maintenance | None = None,
    product: str = "",
    memo: dict[str, list[int]] | None = None,
) -> Page[CustomerRow]:
    """Customers matching ``search`` (:func:`customers_matching`), each with their maintenance
    status at ``now`` (of ``product`` alone when given); with ``maintenance``, only those with
    that status (:func:`has_maintenance`).

    The status is computed, not stored, so that filter is decided in Python: every matching
    customer is read in batches, in the page's order, and the ids kept are held (not the rows).
    ``memo``, a dict kept across the calls of one CSV export, keeps them for its later pages.
    """
    query = customers_matching(search.strip(), product)
    if maintenance is None:
        found: Page[Customer] = page_of(
            session, _with_maintenance_loaded(query), window, CUSTOMER_SORTS, Customer.id
        )
    else:
        applied, clauses = order(CUSTOMER_SORTS, window.sort)
        key = applied
        if memo is None or key not in memo:
            last = Customer.id.desc() if applied.startswith("-") else Customer.id.asc()
            ordered = list(
                session.scalars(query.with_only_columns(Customer.id).order_by(*clauses, last))
            )
            kept: list[int] = []
            for start in range(0, len(ordered), EXPORT_BATCH):
                chunk = ordered[start : start + EXPORT_BATCH]
                batch = _with_maintenance_loaded(select(Customer).where(Customer.id.in_(chunk)))
                keep = {
                    c.id
                    for c in session.scalars(batch)
                    if has_maintenance(
                        customer_maintenance(c, now, renewal_url, product), maintenance
                    )
                }
                kept.extend(i for i in chunk if i in keep)
            if memo is None:
                memo = {}
            memo[key] = kept
        ids = page_of_list(memo[key], window)
        batch = _with_maintenance_loaded(select(Customer).where(Customer.id.in_(ids.rows)))
        by_id = {c.id: c for c in session.scalars(batch)}
        found = replace(ids.map(lambda page: [by_id[i] for i in page]), sort=applied)

    def with_maintenance(rows: list[Customer]) -> list[CustomerRow]:
        return [
            CustomerRow(
                customer,
                customer_maintenance(customer, now, renewal_url, product),
                len(customer.licenses),
            )
            for customer in rows
        ]

    return found.map(with_maintenance)


@dataclass(frozen=True)
class LicenseRow:
    license: License
    installations: int


LICENSE_SORTS = {
    "-issued": License.created_at,
    "customer": Customer.name,
    "product": Product.slug,
    "status": License.status,
}


def licenses(
    session: Session,
    window: Window,
    *,
    key: str = "",
    customer: str = "",
    product: str = "",
    status: LicenseStatus | None = None,
) -> Page[LicenseRow]:
    """Every license (newest first), found by full key or key prefix, customer name or slug,
    product and status (:func:`licenses_matching`); each with how many installations use it."""
    query = licenses_matching(
        key=key.strip(), customer_search=customer.strip(), product=product, status=status
    ).options(selectinload(License.customer), selectinload(License.product))
    found: Page[License] = page_of(session, query, window, LICENSE_SORTS, License.id)

    def with_counts(rows: list[License]) -> list[LicenseRow]:
        counts = installation_counts(session, license_ids=[lic.id for lic in rows])
        return [LicenseRow(lic, counts.get(lic.id, 0)) for lic in rows]

    return found.map(with_counts)


CONTRACT_SORTS = {
    "ends": Contract.ends_on,
    "starts": Contract.starts_on,
    "customer": Customer.name,
}


def contracts(
    session: Session,
    window: Window,
    *,
    today: date,
    state: ContractState | None = None,
    within_days: int = 30,
    search: str = "",
    product: str = "",
) -> Page[Contract]:
    """Contracts by their state today: ``current``; ``ending`` within ``within_days`` and not
    renewed yet; ``ended``; ``lapsed`` (ended and not renewed). Renewed: followed by a later
    contract of the same kind for the same product. ``search`` finds the customer by name or
    slug (:func:`contracts_matching`)."""
    query = contracts_matching(
        customer_search=search.strip(),
        product=product,
        state=(state, today, within_days) if state is not None else None,
    ).options(selectinload(Contract.customer), selectinload(Contract.product))
    return page_of(session, query, window, CONTRACT_SORTS, Contract.id)


def lapsed_running(
    session: Session, window: Window, *, now: datetime, renewal_url: str, product: str = ""
) -> Page[CustomerMaintenance]:
    """Customers whose maintenance of a product lapsed while installations of it still report
    (by customer name), with the versions they run."""
    rows = [
        row
        for row in overview(session, now, renewal_url).lapsed_running
        if not product or row.product.slug == product
    ]
    return page_of_list(rows, window)


INSTALLATION_SORTS = {
    "-last_seen": Installation.last_seen,
    "customer": Customer.name,
    "version": Installation.version,
    "platform": Installation.platform,
    "first_seen": Installation.first_seen,
}


def installations(
    session: Session,
    window: Window,
    *,
    customer: str = "",
    product: str = "",
    version: str = "",
    platform: str = "",
    search: str = "",
) -> Page[tuple[Installation, License, Customer, Product]]:
    """Installations (last seen first) with the license, customer and product they belong to:
    of one customer (slug), product, version or platform; ``search`` finds an installation id
    or a customer name."""
    query = (
        select(Installation, License, Customer, Product)
        .join(License, License.id == Installation.license_id)
        .join(Customer, Customer.id == License.customer_id)
        .join(Product, Product.id == License.product_id)
    )
    for column, wanted in (
        (Customer.slug, customer),
        (Product.slug, product),
        (Installation.version, version),
        (Installation.platform, platform),
    ):
        if wanted:
            query = query.where(column == wanted)
    if search.strip():
        query = query.where(
            or_(contains(Installation.uid, search.strip()), contains(Customer.name, search))
        )
    return page_of(session, query, window, INSTALLATION_SORTS, Installation.id, scalars=False)


RELEASE_SORTS = {
    "-published": func.coalesce(Release.published_at, Release.created_at),
    "product": Product.slug,
    "kind": Release.kind,
}


def releases(
    session: Session,
    window: Window,
    *,
    product: str = "",
    kind: ReleaseKind | None = None,
    state: ReleaseState | None = None,
    channel: str = "",
    search: str = "",
) -> Page[Release]:
    """Releases of every product (newest first; a draft counts from when it was made) by
    product, kind, state and channel; ``search`` finds a version."""
    query = (
        select(Release)
        .join(Product, Product.id == Release.product_id)
        .options(
            selectinload(Release.product),
            selectinload(Release.line),
            selectinload(Release.artifacts),
        )
    )
    draft = or_(Release.published_at.is_(None), Release.manifest.is_(None))
    if state == ReleaseState.DRAFT:
        query = query.where(draft)
    elif state == ReleaseState.YANKED:
        query = query.where(~draft, Release.yanked_at.is_not(None))
    elif state == ReleaseState.PUBLISHED:
        query = query.where(~draft, Release.yanked_at.is_(None))
    for column, wanted in (
        (Product.slug, product),
        (Release.kind, kind),
        (Release.channel, channel),
    ):
        if wanted:
            query = query.where(column == wanted)
    if search.strip():
        query = query.where(contains(Release.version, search.strip()))
    return page_of(session, query, window, RELEASE_SORTS, Release.id)
