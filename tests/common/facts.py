"""Factories for the entitlement engine's facts: terse, with defaults that read as "normal".

Dates may be written as ISO strings (``"2026-12-31"``); instants with :func:`utc` or
:func:`local`. Release ids are deterministic per version unless given.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from packaging.version import Version

from server.domain.facts import ContractFacts, LicenseFacts, ProductPolicy, ReleaseFacts

PRODUCT = "acme-erp"
CUSTOMER = "initech"
PLATFORM = "linux-x86_64"


def utc(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    """An instant in UTC (noon unless told)."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


def local(zone: str, y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A wall-clock time in ``zone``, as a UTC instant (midnight unless told)."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def maintenance(
    starts: date | str, ends: date | str, product: str | None = PRODUCT
) -> ContractFacts:
    """A maintenance contract for ``product`` (None: all products), both days inclusive."""
    return ContractFacts("maintenance", product, day(starts), day(ends))


def customization(
    starts: date | str, ends: date | str, product: str | None = PRODUCT
) -> ContractFacts:
    """A customization contract (the add-on for customized builds)."""
    return ContractFacts("customization", product, day(starts), day(ends))


def license_of(
    *contracts: ContractFacts,
    status: str = "active",
    customer: str = CUSTOMER,
    product: str = PRODUCT,
) -> LicenseFacts:
    """A license of ``customer`` for ``product`` with the customer's ``contracts``."""
    return LicenseFacts(status, product, customer, tuple(contracts))


def policy(**overrides: Any) -> ProductPolicy:
    """The product's policy: perpetual fallback, 30-day warning, no grace, UTC, unless told."""
    return replace(ProductPolicy(PRODUCT), **overrides)


def release(
    version: str,
    published_at: datetime,
    *,
    kind: str = "update",
    severity: str | None = None,
    line: str | None = None,
    line_status: str = "supported",
    customers: Iterable[str] = (),
    yanked: bool = False,
    yank_reason: str | None = None,
    recommended_version: str | None = None,
    channel: str = "stable",
    min_from: str | None = None,
    platforms: Iterable[str] = (PLATFORM,),
    rollout: int = 100,
    product: str = PRODUCT,
    release_id: int | None = None,
) -> ReleaseFacts:
    """A published release; its line is "<major>.x" unless told."""
    v = Version(version)
    return ReleaseFacts(
        id=release_id if release_id is not None else zlib.crc32(version.encode()) % 1_000_000,
        product=product,
        version=v,
        kind=kind,
        severity=severity,
        channel=channel,
        line=line or f"{v.major}.x",
        line_status=line_status,
        published_at=published_at,
        customers=frozenset(customers),
        yanked=yanked,
        yank_reason=yank_reason if yank_reason is not None else ("broken" if yanked else None),
        recommended_version=recommended_version,
        min_from=Version(min_from) if min_from else None,
        platforms=frozenset(platforms),
        rollout_percent=rollout,
    )


def security(
    version: str, published_at: datetime, severity: str = "serious", **kw: Any
) -> ReleaseFacts:
    """A security revision."""
    return release(version, published_at, kind="security", severity=severity, **kw)
