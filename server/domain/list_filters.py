"""The filters the admin pages' lists (:mod:`server.domain.listings`, and so their CSV exports)
and the admin API's (:mod:`server.domain.api_lists`) share, each written once: a license by its
key, a customer by a search or their maintenance, and the contract and license filters. Each
gives a query (or a condition) to which a list adds its loading, order and paging."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from server.domain.coverage import MaintenanceStatus
from server.domain.maintenance import maintenance_of
from server.domain.models import Contract, Customer, License, Product
from server.domain.secrets import secret_hash
from server.domain.vocabulary import ContractKind, ContractState, LicenseStatus, Maintenance

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


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holds ``text``, whatever the case (``%`` and ``_`` taken literally)."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def customer_matches(search: str) -> ColumnElement[bool]:
    """Customers whose name, slug or a contact e-mail holds ``search`` (any case), or who hold
    a license whose key is or starts with it."""
    return or_(
        contains(Customer.name, search),
        contains(Customer.slug, search),
        contains(cast(Customer.contact_emails, String), search),
        Customer.id.in_(select(License.customer_id).where(key_matches(search))),
    )


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


def customer_named(text: str) -> ColumnElement[bool]:
    """The customer (joined to the query) is named with ``text`` in it, any case, or has the
    slug ``text``: the admin pages' customer search."""
    return or_(contains(Customer.name, text), Customer.slug == text)


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
    :func:`customer_named` ``customer_search``, of ``product`` (a slug), with ``status``: the
    filters of the admin pages' list (:func:`server.domain.listings.licenses`) and of the admin
    API's (:func:`server.domain.api_lists.licenses`)."""
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
    """A contract's state ``today`` (:func:`server.domain.listings.contracts` says what each
    one means)."""
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
    day it is judged on and the days "ending" looks ahead: the filters of the admin pages'
    list (:func:`server.domain.listings.contracts`) and of the admin API's
    (:func:`server.domain.api_lists.contracts`)."""
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
