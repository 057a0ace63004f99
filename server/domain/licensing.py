"""Who is asking: license keys presented by installations, and the installations themselves."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from server.domain.errors import (
    InstallationLimitError,
    LicenseMissingError,
    LicenseRevokedError,
    LicenseSuspendedError,
    LicenseUnknownError,
    WrongProductError,
)
from server.domain.models import Contract, Customer, Installation, License
from server.domain.secrets import matches, secret_hash


def authenticate_license(session: Session, key: str | None) -> License:
    """The active license ``key`` names, with its customer and contracts loaded.

    The lookup goes through a unique index on the key's SHA-256; the final comparison is
    constant-time, so response timing says nothing about how much of a key was right.
    """
    if not key:
        raise LicenseMissingError("send Authorization: License <key>")
    # One round trip: the license, its product, its customer and the customer's contracts.
    lic = (
        session.scalars(
            select(License)
            .where(License.key_hash == secret_hash(key))
            .options(
                joinedload(License.product),
                joinedload(License.customer)
                .joinedload(Customer.contracts)
                .joinedload(Contract.product),
            )
        )
        .unique()
        .one_or_none()
    )
    if lic is None or not matches(key, lic.key_hash):
        raise LicenseUnknownError("unknown license key", license=None)
    if lic.status == "revoked":
        raise LicenseRevokedError("this license has been revoked", license=lic)
    if lic.status == "suspended":
        raise LicenseSuspendedError("this license is suspended; contact your vendor", license=lic)
    return lic


def check_product(lic: License, product_slug: str) -> None:
    if lic.product.slug != product_slug:
        raise WrongProductError(
            f"this license is for {lic.product.slug}, not {product_slug}", license=lic
        )


def register_installation(
    session: Session,
    lic: License,
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
    inst = session.scalar(
        select(Installation).where(Installation.license_id == lic.id, Installation.uid == uid)
    )
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
