"""The facts the entitlement rules decide on: a license and its customer's contracts, a
product's policy, a published release. Frozen values built from database rows
(:mod:`server.domain.row_facts`) or by tests; the rules never see a row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from packaging.version import Version

from server.domain.vocabulary import (
    ANY_PLATFORM,
    ContractKind,
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    ReleaseKind,
    Severity,
)

# Hours to apply a security revision by, per severity, unless the product says otherwise.
DEFAULT_DEADLINES: Mapping[str, int] = {
    Severity.CRITICAL: 8,
    Severity.SERIOUS: 24,
    Severity.MINOR: 72,
}


@dataclass(frozen=True)
class ContractFacts:
    """One contract of the license's customer."""

    kind: ContractKind
    product: str | None  # None: every product
    starts_on: date
    ends_on: date  # inclusive: covered through the whole day in the vendor's zone

    def applies_to(self, kind: str, product: str) -> bool:
        """Is this a well-formed contract of ``kind`` covering ``product``?"""
        return (
            self.kind == kind and self.product in (None, product) and self.starts_on <= self.ends_on
        )


@dataclass(frozen=True)
class LicenseFacts:
    """A license, its customer and the customer's contracts."""

    status: LicenseStatus
    product: str
    customer: str
    contracts: tuple[ContractFacts, ...] = ()


@dataclass(frozen=True)
class ProductPolicy:
    """A product's entitlement settings.

    Raises:
        ValueError: an unknown lapse policy or a negative number of days or months.
        zoneinfo.ZoneInfoNotFoundError: ``timezone`` is not a zoneinfo key.
    """

    product: str
    lapse_policy: LapsePolicy = LapsePolicy.FALLBACK
    security_carveout_months: int = 0  # 0: no carve-out
    expiring_window_days: int = 30
    grace_days: int = 0
    timezone: str = "UTC"  # the vendor's zone, in which contract days begin and end
    severity_deadlines: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    renewal_url: str = ""

    def __post_init__(self) -> None:
        if self.lapse_policy not in set(LapsePolicy):
            raise ValueError(f"unknown lapse policy {self.lapse_policy!r}")
        if min(self.security_carveout_months, self.expiring_window_days, self.grace_days) < 0:
            raise ValueError("carve-out months, expiring window and grace days must be >= 0")
        ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ReleaseFacts:
    """A published release of a product, with its line's lifecycle status.

    Raises:
        ValueError: a naive ``published_at`` or a rollout outside 0–100.
    """

    id: int
    product: str
    version: Version
    kind: ReleaseKind
    severity: Severity | None
    channel: str
    line: str  # e.g. "4.x"
    line_status: LineStatus
    published_at: datetime
    customers: frozenset[str] = frozenset()  # empty: everyone
    yanked: bool = False
    yank_reason: str | None = None
    recommended_version: str | None = None
    min_from: Version | None = None
    platforms: frozenset[str] = frozenset({ANY_PLATFORM})
    rollout_percent: int = 100  # 100: everyone; 0: halted

    def __post_init__(self) -> None:
        if self.published_at.utcoffset() is None:
            raise ValueError(f"release {self.version}: published_at must be timezone-aware")
        if not 0 <= self.rollout_percent <= 100:
            raise ValueError(f"release {self.version}: rollout_percent must be 0..100")
