"""Who is asking: license keys presented by installations, and the installations themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, aliased

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
class LicenseView:
    """What a check needs to know about the license presenting itself, read in two queries."""

    id: int
    status: str
    max_installations: int | None
    product_id: int
    product_slug: str
    catalog_revision: int
    customer_slug: str
    contracts: tuple[ContractFacts, ...]
    language: str = ""  # the customer's setting; empty: follow the request

    def facts(self) -> LicenseFacts:
        return LicenseFacts(self.status, self.product_slug, self.customer_slug, self.contracts)


# Built once: statement construction costs more than the queries themselves on this hot path.
_CONTRACT_PRODUCT = aliased(Product)
# One round trip: the license, its product and customer, and one row per contract (or one row
# with no contract). Built once: statement construction costs more than the query here.
_LICENSE_BY_HASH = (
    select(
        License.id,
        License.status,
        License.key_hash,
        License.max_installations,
        Product.id,
        Product.slug,
        Product.catalog_revision,
        Customer.slug,
        Customer.language,
        Contract.kind,
        _CONTRACT_PRODUCT.slug,
        Contract.starts_on,
        Contract.ends_on,
    )
    .join(Product, License.product_id == Product.id)
    .join(Customer, License.customer_id == Customer.id)
    .outerjoin(Contract, Contract.customer_id == Customer.id)
    .outerjoin(_CONTRACT_PRODUCT, Contract.product_id == _CONTRACT_PRODUCT.id)
    .where(License.key_hash == bindparam("key_hash"))
)
_INSTALLATION = select(Installation).where(
    Installation.license_id == bindparam("license_id"), Installation.uid == bindparam("uid")
)


def authenticate_license(session: Session, key: str | None) -> LicenseView:
    """The active license ``key`` names, with its product and its customer's contracts.

    The lookup goes through a unique index on the key's SHA-256; the final comparison is
    constant-time, so response timing says nothing about how much of a key was right. Plain
    column reads (no ORM objects): this runs on every update check.
    """
    if not key:
        raise LicenseMissingError("send Authorization: License <key>")
    rows = session.execute(_LICENSE_BY_HASH, {"key_hash": secret_hash(key)}).all()
    if not rows or not matches(key, rows[0][2]):
        raise LicenseUnknownError("unknown license key", license=None)
    lic_id, status, _, cap, product_id, product_slug, revision, customer_slug, language = rows[0][
        :9
    ]
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
    )


def check_product(lic: LicenseView, product_slug: str) -> None:
    if lic.product_slug != product_slug:
        raise WrongProductError(
            f"this license is for {lic.product_slug}, not {product_slug}", license=lic.id
        )


def register_installation(
    session: Session,
    lic: LicenseView,
    uid: str,
    *,
    version: str,
    platform: str,
    channel: str,
    now: datetime,
    touch_interval: timedelta,
) -> Installation:
    """Record an installation's check without writing on every poll.

    A new installation is inserted (refused past the license's cap); a known one is written only
    when its version, platform or channel changed or it was last seen over ``touch_interval`` ago.
    The caller commits.
    """
    inst = session.scalar(_INSTALLATION, {"license_id": lic.id, "uid": uid})
    if inst is None:
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
        inst = Installation(
            license_id=lic.id,
            uid=uid,
            version=version,
            platform=platform,
            channel=channel,
            first_seen=now,
            last_seen=now,
        )
        session.add(inst)
        return inst
    changed = (inst.version, inst.platform, inst.channel) != (version, platform, channel)
    if changed or now - inst.last_seen >= touch_interval:
        inst.version, inst.platform, inst.channel = version, platform, channel
        inst.last_seen = now
    return inst
