"""Who is asking: license keys presented by installations, and the installations themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, String, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from server.db import FastRead
from server.domain.entitlements import ContractFacts, LicenseFacts
from server.domain.errors import (
    InstallationLimitError,
    LicenseMissingError,
    LicenseRevokedError,
    LicenseSuspendedError,
    LicenseUnknownError,
    WrongProductError,
)
from server.domain.models import Contract, Customer, Installation, License, Product
from server.domain.secrets import matches, secret_hash


@dataclass(frozen=True)
class InstallationSeen:
    """What the server last recorded about an installation."""

    version: str
    platform: str
    channel: str
    last_seen: datetime


@dataclass(frozen=True)
class LicenseView:
    """What a check needs to know about the license presenting itself, read in one query."""

    id: int
    status: str
    max_installations: int | None
    product_id: int
    product_slug: str
    catalog_revision: int
    customer_slug: str
    contracts: tuple[ContractFacts, ...]
    language: str = ""  # the customer's setting; empty: follow the request
    installation: InstallationSeen | None = None  # the one asked for, if the license has it

    def facts(self) -> LicenseFacts:
        return LicenseFacts(self.status, self.product_slug, self.customer_slug, self.contracts)


_LICENSES, _PRODUCTS, _CUSTOMERS = License.__table__, Product.__table__, Customer.__table__
_CONTRACTS, _INSTALLATIONS = Contract.__table__, Installation.__table__
_CONTRACT_PRODUCTS = _PRODUCTS.alias("contract_products")
# One round trip: the license, its product and customer, the installation asking (if the
# license has it), and one row per contract (or one row with no contract). Core columns, built
# once, run on the driver's cursor: SQLAlchemy's execution layer costs more than the query.
_LICENSE_BY_HASH = FastRead(
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


def authenticate_license(
    conn: Connection | Session, key: str | None, *, installation_uid: str | None = None
) -> LicenseView:
    """The active license ``key`` names, with its product and its customer's contracts, and
    what was last recorded about installation ``installation_uid`` of it (when given).

    The lookup goes through a unique index on the key's SHA-256; the final comparison is
    constant-time, so response timing says nothing about how much of a key was right. Plain
    column reads (no ORM objects): this runs on every update check.
    """
    if not key:
        raise LicenseMissingError("send Authorization: License <key>")
    params = {"key_hash": secret_hash(key), "uid": installation_uid}
    rows = (
        _LICENSE_BY_HASH.all(conn, params)
        if isinstance(conn, Connection)
        else conn.execute(_LICENSE_BY_HASH.statement, params).all()
    )
    if not rows or not matches(key, rows[0][2]):
        raise LicenseUnknownError("unknown license key", license=None)
    first = rows[0]
    lic_id, status, _, cap, product_id, product_slug, revision, customer_slug, language = first[:9]
    if status == "revoked":
        raise LicenseRevokedError("this license has been revoked", license=lic_id)
    if status == "suspended":
        raise LicenseSuspendedError(
            "this license is suspended; contact your vendor", license=lic_id
        )
    contracts = tuple(
        ContractFacts(kind, slug, starts_on, ends_on)
        for *_, kind, slug, starts_on, ends_on in rows
        if kind is not None
    )
    seen = InstallationSeen(*first[9:13]) if first[9] is not None else None
    return LicenseView(
        lic_id,
        status,
        cap,
        product_id,
        product_slug,
        revision,
        customer_slug,
        contracts,
        language,
        seen,
    )


def check_product(lic: LicenseView, product_slug: str) -> None:
    if lic.product_slug != product_slug:
        raise WrongProductError(
            f"this license is for {lic.product_slug}, not {product_slug}", license=lic.id
        )


def register_installation(
    open_session: Callable[[], Session],
    lic: LicenseView,
    uid: str,
    *,
    version: str,
    platform: str,
    channel: str,
    now: datetime,
    touch_interval: timedelta,
) -> bool:
    """Record an installation's check without writing on every poll.

    ``lic`` was read with ``installation_uid=uid``, so what was last recorded is known without
    another query. A new installation is inserted (refused past the license's cap); a known one
    is written only when its version, platform or channel changed or it was last seen over
    ``touch_interval`` ago. ``open_session`` is called only then; the caller commits when this
    returns True (something was written).
    """
    seen = lic.installation
    if seen is not None:
        changed = (seen.version, seen.platform, seen.channel) != (version, platform, channel)
        if not changed and now - seen.last_seen < touch_interval:
            return False
    session = open_session()
    if seen is None:
        if lic.max_installations is not None:
            used = (
                session.scalar(
                    select(func.count())
                    .select_from(Installation)
                    .where(Installation.license_id == lic.id)
                )
                or 0
            )
            if used >= lic.max_installations:
                raise InstallationLimitError(
                    f"this license allows {lic.max_installations} installation(s) and all are in use",
                    license=lic,
                )
        session.execute(
            insert(Installation).values(
                license_id=lic.id,
                uid=uid,
                version=version,
                platform=platform,
                channel=channel,
                first_seen=now,
                last_seen=now,
            )
        )
        return True
    session.execute(
        update(Installation)
        .where(Installation.license_id == lic.id, Installation.uid == uid)
        .values(version=version, platform=platform, channel=channel, last_seen=now)
    )
    return True
