"""The admin API's lists: filters in SQL where SQL can say them, one page at a time (cursor
pagination, :mod:`server.domain.cursors`), in a bounded number of queries per page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from server.domain.coverage import MaintenanceStatus
from server.domain.cursors import Page, keyset
from server.domain.errors import InvalidInputError
from server.domain.list_filters import (
    contracts_matching,
    customers_matching,
    has_maintenance,
    licenses_matching,
)
from server.domain.list_filters import (
    customer_maintenance as customer_maintenance,  # the API's customer answers use it too
)
from server.domain.models import (
    AuditEvent,
    Contract,
    Customer,
    CustomerUser,
    Installation,
    License,
    Product,
)
from server.domain.vocabulary import ContractKind, LicenseStatus, Maintenance, parse

MAX_SEARCH = 200


def _check_search(text: str) -> None:
    if len(text) > MAX_SEARCH:
        raise InvalidInputError("q", f"must be at most {MAX_SEARCH} characters")


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    maintenance: list[tuple[Product, MaintenanceStatus]]  # one per product they hold a license for

    @property
    def id(self) -> int:  # what the page's cursor is made of
        return self.customer.id


def customers(
    session: Session,
    *,
    now: datetime,
    renewal_url: str,
    q: str = "",
    maintenance: str = "",
    product: str = "",
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[CustomerRow]:
    """Customers by id; ``q`` finds a name, slug or contact e-mail, or a license key or its start,
    ``maintenance`` keeps those with that status for some product they license (``none``: also
    those without a license), ``product`` narrows the status to one product — the admin pages'
    filters (:func:`server.domain.list_filters.customers_matching`, ``has_maintenance``)."""
    status = parse(Maintenance, "maintenance", maintenance) if maintenance else None
    if q:
        _check_search(q)
    query = customers_matching(q, product).options(
        selectinload(Customer.licenses).selectinload(License.product),
        selectinload(Customer.contracts).selectinload(Contract.product),
    )

    def keep(batch: Sequence[Customer]) -> list[CustomerRow]:
        rows = []
        for customer in batch:
            found = customer_maintenance(customer, now, renewal_url, product)
            if has_maintenance(found, status):
                rows.append(CustomerRow(customer, found))
        return rows

    return keyset(session, query, Customer.id, cursor=cursor, limit=limit, keep=keep)


def contracts(
    session: Session,
    *,
    customer: str = "",
    product: str = "",
    kind: str = "",
    ends_before: date | None = None,
    ends_after: date | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[Contract]:
    """Contracts by id, filtered by customer, product, kind and end date (inclusive bounds):
    :func:`server.domain.list_filters.contracts_matching`, the admin pages' filters."""
    query = contracts_matching(
        customer=customer,
        product=product,
        kind=parse(ContractKind, "kind", kind) if kind else None,
        ends_after=ends_after,
        ends_before=ends_before,
    ).options(
        selectinload(Contract.customer).selectinload(Customer.contracts),
        selectinload(Contract.product),
    )
    return keyset(session, query, Contract.id, cursor=cursor, limit=limit)


def licenses(
    session: Session,
    *,
    customer: str = "",
    product: str = "",
    status: str = "",
    prefix: str = "",
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[License]:
    """Licenses by id; ``prefix`` finds a license by its whole key or its first characters (at
    least 5), as the admin pages do (:func:`server.domain.list_filters.licenses_matching`, the
    pages' filters)."""
    query = licenses_matching(
        key=prefix,
        customer=customer,
        product=product,
        status=parse(LicenseStatus, "status", status) if status else None,
    ).options(selectinload(License.customer), selectinload(License.product))
    return keyset(session, query, License.id, cursor=cursor, limit=limit)


def installations(
    session: Session,
    *,
    customer: str = "",
    product: str = "",
    version: str = "",
    seen_before: datetime | None = None,
    seen_after: datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[tuple[Installation, License]]:
    """Installations by id with their license, filtered by customer, product, version and when
    they last checked in."""
    query: Select[tuple[Installation]] = select(Installation)
    if customer or product:
        of_licenses = licenses_matching(customer=customer, product=product)
        query = query.where(Installation.license_id.in_(of_licenses.with_only_columns(License.id)))
    if version:
        query = query.where(Installation.version == version)
    if seen_before is not None:
        query = query.where(Installation.last_seen < seen_before)
    if seen_after is not None:
        query = query.where(Installation.last_seen >= seen_after)
    page = keyset(session, query, Installation.id, cursor=cursor, limit=limit)
    ids = {i.license_id for i in page.items}
    by_id = {
        lic.id: lic
        for lic in session.scalars(
            select(License)
            .where(License.id.in_(ids))
            .options(selectinload(License.customer), selectinload(License.product))
        )
    }
    return Page([(i, by_id[i.license_id]) for i in page.items], page.next)


def portal_users(
    session: Session,
    *,
    customer: str = "",
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[CustomerUser]:
    query = select(CustomerUser).options(selectinload(CustomerUser.customer))
    if customer:
        query = query.where(CustomerUser.customer.has(Customer.slug == customer))
    return keyset(session, query, CustomerUser.id, cursor=cursor, limit=limit)


def audit_events(
    session: Session,
    *,
    action: str = "",
    actor: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[AuditEvent]:
    """Audit events, newest first; ``action`` matches a prefix (``license.`` for every license
    action); ``since`` inclusive, ``until`` exclusive."""
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if target:
        query = query.where(AuditEvent.target == target)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return keyset(session, query, AuditEvent.id, cursor=cursor, limit=limit, newest_first=True)
