"""The vendor's lists, filtered, sorted and paged: customers with their maintenance, every
license, contracts ending or lapsed, lapsed customers still running the product, and
installations, and releases. (The audit log's pages are :func:`server.domain.audit.events`.)

Each list is one function: the filters as keyword arguments and a :class:`Window` in, a
:class:`Page` out, in a bounded number of queries. A CSV export reads the same function page
after page (:func:`server.domain.paging.every_row`), so it holds exactly the rows shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased, selectinload

from server.domain.coverage import MaintenanceStatus
from server.domain.customers import installation_counts
from server.domain.maintenance import CustomerMaintenance, maintenance_of, overview
from server.domain.models import Contract, Customer, Installation, License, Product, Release
from server.domain.paging import EXPORT_BATCH, Page, Window, order, page_of, page_of_list
from server.domain.secrets import secret_hash
from server.domain.vocabulary import (
    ContractKind,
    ContractState,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
    ReleaseState,
)

# A search this long may be the start of a license key: shorter ones would match every key.
KEY_SEARCH_MIN = 5


def key_matches(text: str) -> ColumnElement[bool]:
    """Licenses whose key is ``text``, or starts with it, or whose shown prefix starts
    ``text`` (a pasted key longer than the prefix lists show)."""
    conditions: list[ColumnElement[bool]] = [License.key_hash == secret_hash(text)]
    if len(text) >= KEY_SEARCH_MIN:
        conditions.append(License.key_prefix.startswith(text, autoescape=True))
        # A pasted key, or a start of one, longer than the prefix the lists show (whose length
        # depends on the key's: a third of it, at most 10 characters).
        conditions.append(
            and_(
                func.length(License.key_prefix) >= KEY_SEARCH_MIN,
                func.substr(literal(text), 1, func.length(License.key_prefix))
                == License.key_prefix,
            )
        )
    return or_(*conditions)


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holds ``text``, whatever the case (``%`` and ``_`` taken literally)."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def customer_matches(search: str) -> ColumnElement[bool]:
    """Customers whose name, slug or a contact e-mail holds ``search`` (any case), or who hold
    a license whose key is or starts with it."""
    return or_(
        _contains(Customer.name, search),
        _contains(Customer.slug, search),
        _contains(cast(Customer.contact_emails, String), search),
        Customer.id.in_(select(License.customer_id).where(key_matches(search))),
    )


@dataclass(frozen=True)
class CustomerRow:
    """A customer, and their maintenance for each product they hold a license for."""

    customer: Customer
    maintenance: list[tuple[Product, MaintenanceStatus]]
    licenses: int


CUSTOMER_SORTS = {"name": Customer.name, "slug": Customer.slug, "added": Customer.created_at}


def customer_maintenance(
    customer: Customer, now: datetime, renewal_url: str, product: str = ""
) -> list[tuple[Product, MaintenanceStatus]]:
    """A customer's maintenance for each product they hold a license for, by slug (of
    ``product`` alone when given); their licenses and contracts should be loaded already."""
    held = {
        lic.product.slug: lic.product
        for lic in customer.licenses
        if not product or lic.product.slug == product
    }
    return [
        (product_, maintenance_of(customer, product_, now, renewal_url))
        for _, product_ in sorted(held.items())
    ]


def has_maintenance(
    found: list[tuple[Product, MaintenanceStatus]], status: Maintenance | None
) -> bool:
    """The maintenance filter (the admin list, its export and the API's): ``found`` (from
    :func:`customer_maintenance`) has ``status`` for some product; ``none`` also keeps a
    customer without a license (of that product)."""
    if status is None:
        return True
    return any(m.status == status for _, m in found) or (status == Maintenance.NONE and not found)


def customers_matching(search: str, product: str = "") -> Select[Customer]:
    """Customers whose name, slug or a contact e-mail holds ``search``, or who hold a license
    whose key is or starts with it; who hold a license of ``product`` when given."""
    query = select(Customer)
    if search:
        query = query.where(customer_matches(search))
    if product:
        query = query.where(Customer.licenses.any(License.product.has(Product.slug == product)))
    return query


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


def customer_named(text: str) -> ColumnElement[bool]:
    """The customer (joined to the query) is named with ``text`` in it, any case, or has the
    slug ``text``: the admin pages' customer search."""
    return or_(_contains(Customer.name, text), Customer.slug == text)


def licenses_matching(
    *,
    key: str = "",
    customer: str = "",
    customer_search: str = "",
    product: str = "",
    status: LicenseStatus | None = None,
) -> Select[License]:
    """Licenses, joined to their customer and product: found by their key or its start
    (:func:`key_matches`), of the customer with the slug ``customer``, of a customer
    :func:`customer_named` ``customer_search``, of ``product`` (a slug), with ``status``. The
    filters of the admin pages' list (:func:`licenses`) and of the admin API's
    (:func:`server.domain.api_lists.licenses`)."""
    query = (
        select(License)
        .join(Customer, Customer.id == License.customer_id)
        .join(Product, Product.id == License.product_id)
    )
    if key:
        query = query.where(key_matches(key))
    if customer:
        query = query.where(Customer.slug == customer)
    if customer_search:
        query = query.where(customer_named(customer_search))
    if product:
        query = query.where(Product.slug == product)
    if status is not None:
        query = query.where(License.status == status)
    return query


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


def _renewed() -> ColumnElement[bool]:
    """A later contract of the same customer, kind and product covers today or after."""
    later = aliased(Contract)
    return exists().where(
        later.customer_id == Contract.customer_id,
        later.kind == Contract.kind,
        later.product_id.is_not_distinct_from(Contract.product_id),
        later.ends_on > Contract.ends_on,
    )


def _in_state(state: ContractState, today: date, within_days: int) -> ColumnElement[bool]:
    """A contract's state ``today`` (:func:`contracts` says what each one means)."""
    if state == ContractState.CURRENT:
        return and_(Contract.starts_on <= today, Contract.ends_on >= today)
    if state == ContractState.ENDING:
        return and_(
            Contract.starts_on <= today,
            Contract.ends_on >= today,
            Contract.ends_on <= today + timedelta(days=within_days),
            ~_renewed(),
        )
    if state == ContractState.ENDED:
        return Contract.ends_on < today
    return and_(Contract.ends_on < today, ~_renewed())  # lapsed


def contracts_matching(
    *,
    customer: str = "",
    customer_search: str = "",
    product: str = "",
    kind: ContractKind | None = None,
    ends_after: date | None = None,
    ends_before: date | None = None,
    state: tuple[ContractState, date, int] | None = None,
) -> Select[Contract]:
    """Contracts, joined to their customer: of the customer with the slug ``customer``, of a
    customer :func:`customer_named` ``customer_search``, of ``product`` (a slug), of ``kind``,
    ending from ``ends_after`` to ``ends_before`` (both included), in ``state``: a state, the
    day it is judged on and the days "ending" looks ahead. The filters of the admin pages'
    list (:func:`contracts`) and of the admin API's (:func:`server.domain.api_lists.contracts`).
    """
    query = select(Contract).join(Customer, Customer.id == Contract.customer_id)
    if customer:
        query = query.where(Customer.slug == customer)
    if customer_search:
        query = query.where(customer_named(customer_search))
    if product:
        query = query.where(Contract.product.has(Product.slug == product))
    if kind is not None:
        query = query.where(Contract.kind == kind)
    if ends_after is not None:
        query = query.where(Contract.ends_on >= ends_after)
    if ends_before is not None:
        query = query.where(Contract.ends_on <= ends_before)
    if state is not None:
        query = query.where(_in_state(*state))
    return query


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
            or_(_contains(Installation.uid, search.strip()), _contains(Customer.name, search))
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
        query = query.where(_contains(Release.version, search.strip()))
    return page_of(session, query, window, RELEASE_SORTS, Release.id)
