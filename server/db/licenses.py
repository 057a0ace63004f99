"""The license read every update check makes: :class:`LicenseReads` implements the domain's
:class:`~server.domain.licensing.LicenseLookup`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, bindparam, select
from sqlalchemy.orm import Session

from server.db.engine import Database
from server.db.fast_read import FastRead
from server.domain.facts import ContractFacts
from server.domain.licensing import InstallationSeen, LicenseView
from server.domain.models import Contract, Customer, Installation, License, Product

_LICENSES, _PRODUCTS, _CUSTOMERS = License.__table__, Product.__table__, Customer.__table__
_CONTRACTS, _INSTALLATIONS = Contract.__table__, Installation.__table__
_CONTRACT_PRODUCTS = _PRODUCTS.alias("contract_products")
# One round trip: the license, its product and customer, the installation asking (if the
# license has it), and one row per contract (or one row with no contract). Core columns, built
# once, run on the driver's cursor: SQLAlchemy's execution layer costs more than the query.
LICENSE_BY_KEY_HASH = FastRead(
    select(
        _LICENSES.c.id,
        _LICENSES.c.status,
        _LICENSES.c.key_hash,
        _LICENSES.c.max_installations,
        _PRODUCTS.c.id,
        _PRODUCTS.c.slug,
        _PRODUCTS.c.catalog_revision,
        _CUSTOMERS.c.slug,
        _CUSTOMERS.c.language,
        _INSTALLATIONS.c.version,
        _INSTALLATIONS.c.platform,
        _INSTALLATIONS.c.channel,
        _INSTALLATIONS.c.last_seen,
        _CONTRACTS.c.kind,
        _CONTRACT_PRODUCTS.c.slug,
        _CONTRACTS.c.starts_on,
        _CONTRACTS.c.ends_on,
    )
    .select_from(_LICENSES)
    .join(_PRODUCTS, _LICENSES.c.product_id == _PRODUCTS.c.id)
    .join(_CUSTOMERS, _LICENSES.c.customer_id == _CUSTOMERS.c.id)
    .outerjoin(
        _INSTALLATIONS,
        (_INSTALLATIONS.c.license_id == _LICENSES.c.id)
        & (_INSTALLATIONS.c.uid == bindparam("uid", type_=String)),
    )
    .outerjoin(_CONTRACTS, _CONTRACTS.c.customer_id == _CUSTOMERS.c.id)
    .outerjoin(_CONTRACT_PRODUCTS, _CONTRACTS.c.product_id == _CONTRACT_PRODUCTS.c.id)
    .where(_LICENSES.c.key_hash == bindparam("key_hash"))
)


class LicenseReads:
    """License lookups: on the database (the check: a pooled connection without a transaction,
    each lookup the fast read on the driver's cursor) or on a request's session (the portal,
    apply reports)."""

    def __init__(self, source: Database | Session) -> None:
        self.source = source

    def by_key_hash(self, key_hash: str, installation_uid: str | None) -> LicenseView | None:
        """See :meth:`server.domain.licensing.LicenseLookup.by_key_hash`."""
        params = {"key_hash": key_hash, "uid": installation_uid}
        rows: list[Any]
        if isinstance(self.source, Database):
            with self.source.reading() as conn:
                rows = LICENSE_BY_KEY_HASH.all(conn, params)
        else:
            rows = list(self.source.execute(LICENSE_BY_KEY_HASH.statement, params).all())
        return _license_view(rows) if rows else None


def _license_view(rows: list[Any]) -> LicenseView:
    """One view from the query's rows: one row per contract (or one with no contract)."""
    first = rows[0]
    lic_id, status, key_hash, cap, product_id, product_slug, revision, customer, language = first[
        :9
    ]
    contracts = tuple(
        ContractFacts(kind, slug, starts_on, ends_on)
        for *_, kind, slug, starts_on, ends_on in rows
        if kind is not None
    )
    seen = InstallationSeen(*first[9:13]) if first[9] is not None else None
    return LicenseView(
        lic_id,
        key_hash,
        status,
        cap,
        product_id,
        product_slug,
        revision,
        customer,
        contracts,
        language,
        seen,
    )
