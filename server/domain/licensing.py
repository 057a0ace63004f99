"""Who is asking: license keys presented by installations, and the installations themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.domain.errors import (
    InstallationLimitError,
    LicenseMissingError,
    LicenseRevokedError,
    LicenseSuspendedError,
    LicenseUnknownError,
    WrongProductError,
)
from server.domain.facts import ContractFacts, LicenseFacts
from server.domain.models import Installation
from server.domain.secrets import matches, secret_hash
from server.domain.vocabulary import LicenseStatus


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
    key_hash: str
    status: LicenseStatus
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


class LicenseLookup(Protocol):
    """Finds a license by its key's hash: the one read every update check makes, implemented by
    the infrastructure (:class:`server.db.licenses.LicenseReads`)."""

    def by_key_hash(self, key_hash: str, installation_uid: str | None) -> LicenseView | None:
        """The license whose key hashes to ``key_hash``, with its product, customer, contracts
        and what was last recorded about installation ``installation_uid`` of it; None if none."""
        ...


def authenticate_license(
    lookup: LicenseLookup, key: str | None, *, installation_uid: str | None = None
) -> LicenseView:
    """The active license ``key`` names, with its product and its customer's contracts, and
    what was last recorded about installation ``installation_uid`` of it (when given).

    The lookup goes through a unique index on the key's SHA-256; the final comparison is
    constant-time, so response timing says nothing about how much of a key was right.

    Raises:
        LicenseMissingError: no key was presented.
        LicenseUnknownError: no license has this key.
        LicenseRevokedError, LicenseSuspendedError: the license may not be used now.
    """
    if not key:
        raise LicenseMissingError("send Authorization: License <key>")
    found = lookup.by_key_hash(secret_hash(key), installation_uid)
    if found is None or not matches(key, found.key_hash):
        raise LicenseUnknownError("unknown license key", license=None)
    if found.status == LicenseStatus.REVOKED:
        raise LicenseRevokedError("this license has been revoked", license=found.id)
    if found.status == LicenseStatus.SUSPENDED:
        raise LicenseSuspendedError(
            "this license is suspended; contact your vendor", license=found.id
        )
    return found


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
        # INSERT … ON CONFLICT DO NOTHING: a second first check of this installation at the
        # same moment (an agent's retry, a proxy passing a slow check to another process) read
        # "not registered" too; it must not fail on the row the other one just wrote.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(Installation)
            .values(
                license_id=lic.id,
                uid=uid,
                version=version,
                platform=platform,
                channel=channel,
                first_seen=now,
                last_seen=now,
            )
            .on_conflict_do_nothing(index_elements=["license_id", "uid"])
        )
        return True
    session.execute(
        update(Installation)
        .where(Installation.license_id == lic.id, Installation.uid == uid)
        .values(version=version, platform=platform, channel=channel, last_seen=now)
    )
    return True
