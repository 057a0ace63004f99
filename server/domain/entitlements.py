"""Entitlement rules (DESIGN.md "Entitlement rules"): one pure function of license, contracts,
release and now. No Flask, no database, no clock: the caller passes facts and ``now``.

Contract dates are whole days in the vendor's time zone (``ProductPolicy.timezone``): a contract
that ends on 2026-12-31 covers until 2027-01-01 00:00 there. A release is entitled when it was
published on or before the *cutoff*: ``now`` while maintenance is active, expiring or in grace,
else the end of the last covered period (perpetual fallback). Renewal moves the cutoff back to
``now``, so releases published during a gap are restored too (rule 8).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from packaging.version import Version

MAINTENANCE = "maintenance"
CUSTOMIZATION = "customization"

DEFAULT_DEADLINES: Mapping[str, int] = {"critical": 8, "serious": 24, "minor": 72}

# Customer-facing sentences in one place, so that they can be translated.
MESSAGES = {
    "active": "Maintenance is active until {ends}.",
    "expiring": "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
    "grace": "Maintenance ended on {ends}; you are in the grace period. Renew now to keep receiving updates.",
    "lapsed": "Maintenance ended on {ends}. You keep every release published until then; renew to get newer ones.",
    "none": "This license has no maintenance contract. Buy maintenance to receive updates.",
    "future": "Maintenance starts on {starts}.",
    "license_inactive": "This license is {status}.",
    "wrong_product": "This license is for another product.",
}


@dataclass(frozen=True)
class ContractFacts:
    kind: str  # maintenance | customization
    product: str | None  # None: every product
    starts_on: date
    ends_on: date  # inclusive


@dataclass(frozen=True)
class LicenseFacts:
    status: str  # active | suspended | revoked
    product: str
    customer: str
    contracts: tuple[ContractFacts, ...] = ()


@dataclass(frozen=True)
class ProductPolicy:
    product: str
    lapse_policy: str = "fallback"  # fallback | revoke
    security_carveout_months: int = 0
    expiring_window_days: int = 30
    grace_days: int = 0
    timezone: str = "UTC"
    severity_deadlines: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    renewal_url: str = ""


@dataclass(frozen=True)
class ReleaseFacts:
    id: int
    product: str
    version: Version
    kind: str  # update | security | version
    severity: str | None
    channel: str
    line: str
    line_status: str  # supported | security-only | end-of-life
    published_at: datetime
    customers: frozenset[str] = frozenset()
    yanked: bool = False
    yank_reason: str | None = None
    recommended_version: str | None = None
    min_from: Version | None = None
    platforms: frozenset[str] = frozenset({"any"})
    rollout_percent: int = 100


@dataclass(frozen=True)
class Period:
    """A covered stretch of time: ``start`` inclusive, ``end`` exclusive, both aware."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class MaintenanceStatus:
    status: str  # active | expiring | grace | lapsed | none
    maintenance_ends_on: date | None
    cutoff: datetime | None
    message: str
    lapsed_at: datetime | None = None  # end of the last covered period, once it has passed

    def covers(self, published_at: datetime) -> bool:
        """Was a release published at ``published_at`` inside the cover this status grants?

        While covered the cutoff is ``now`` (inclusive); after a lapse it is the instant cover
        ended, which belongs to the next, uncovered day (exclusive).
        """
        if self.cutoff is None:
            return False
        if self.status == "lapsed":
            return published_at < self.cutoff
        return published_at <= self.cutoff


@dataclass(frozen=True)
class Decision:
    entitled: bool  # may download (a signed manifest stays valid)
    offerable: bool  # may be offered as an update (entitled and not yanked)
    reasons: tuple[str, ...]


def day_start(day: date, zone: str) -> datetime:
    """Midnight at the start of ``day`` in the vendor's zone."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone))


def covered_periods(
    contracts: Iterable[ContractFacts], kind: str, product: str, zone: str
) -> list[Period]:
    """The contracts of ``kind`` for ``product`` (or all products), merged where they touch."""
    spans = sorted(
        (day_start(c.starts_on, zone), day_start(c.ends_on + timedelta(days=1), zone))
        for c in contracts
        if c.kind == kind and c.product in (None, product) and c.ends_on >= c.starts_on
    )
    merged: list[Period] = []
    for start, end in spans:
        if merged and start <= merged[-1].end:
            if end > merged[-1].end:
                merged[-1] = Period(merged[-1].start, end)
        else:
            merged.append(Period(start, end))
    return merged


def _last_day(period: Period, zone: str) -> date:
    return (period.end.astimezone(ZoneInfo(zone)) - timedelta(days=1)).date()


def maintenance_status(
    lic: LicenseFacts, policy: ProductPolicy, now: datetime
) -> MaintenanceStatus:
    """Where the license's maintenance stands at ``now`` and the cutoff that follows (rules 2–3)."""
    if lic.status != "active":
        return MaintenanceStatus(
            "none", None, None, MESSAGES["license_inactive"].format(status=lic.status)
        )
    if lic.product != policy.product:
        return MaintenanceStatus("none", None, None, MESSAGES["wrong_product"])
    zone = policy.timezone
    periods = covered_periods(lic.contracts, MAINTENANCE, policy.product, zone)
    current = next((p for p in periods if p.start <= now < p.end), None)
    if current is not None:
        ends = _last_day(current, zone)
        expiring = current.end - now <= timedelta(days=policy.expiring_window_days)
        status = "expiring" if expiring else "active"
        return MaintenanceStatus(status, ends, now, MESSAGES[status].format(ends=ends))
    past = [p for p in periods if p.end <= now]
    if not past:
        upcoming = [p for p in periods if p.start > now]
        message = (
            MESSAGES["future"].format(starts=upcoming[0].start.astimezone(ZoneInfo(zone)).date())
            if upcoming
            else MESSAGES["none"]
        )
        return MaintenanceStatus("none", None, None, message)
    last = past[-1]
    ends = _last_day(last, zone)
    if now < last.end + timedelta(days=policy.grace_days):
        return MaintenanceStatus("grace", ends, now, MESSAGES["grace"].format(ends=ends), last.end)
    return MaintenanceStatus(
        "lapsed", ends, last.end, MESSAGES["lapsed"].format(ends=ends), last.end
    )


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, clamped to the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def customization_allows(lic: LicenseFacts, policy: ProductPolicy, release: ReleaseFacts) -> bool:
    """Rule 4: a customized build reaches only its customers, while customization covers it."""
    if not release.customers:
        return True
    if lic.customer not in release.customers:
        return False
    periods = covered_periods(lic.contracts, CUSTOMIZATION, policy.product, policy.timezone)
    return any(p.start <= release.published_at < p.end for p in periods)


def decide(
    lic: LicenseFacts,
    policy: ProductPolicy,
    release: ReleaseFacts,
    now: datetime,
    *,
    owned_lines: frozenset[str] = frozenset(),
    status: MaintenanceStatus | None = None,
) -> Decision:
    """May this license have this release at ``now``? (rules 1–6)

    Args:
        owned_lines: lines the customer is entitled to at least one release of, for the security
            carve-out; :func:`owned_lines` computes it.
        status: a precomputed :func:`maintenance_status` (the same for every release of a check).
    """
    if lic.status != "active":
        return Decision(False, False, (f"license {lic.status}",))
    if lic.product != release.product:
        return Decision(False, False, ("license is for another product",))
    if not customization_allows(lic, policy, release):
        return Decision(False, False, ("customized build not covered by a customization contract",))
    status = status or maintenance_status(lic, policy, now)
    reasons: list[str] = []
    entitled = False
    if release.published_at > now:
        reasons.append("not yet published")
    elif status.cutoff is None:
        reasons.append("no maintenance contract covers this license")
    elif status.status == "lapsed" and policy.lapse_policy == "revoke":
        reasons.append("maintenance lapsed and the product's lapse policy revokes downloads")
    elif status.covers(release.published_at):
        entitled = True
        reasons.append(f"published on or before the cutoff ({status.status})")
    else:
        reasons.append("published after maintenance ended")
    if not entitled and _carve_out_applies(policy, release, status, owned_lines):
        entitled = True
        reasons.append(
            f"security carve-out of {policy.security_carveout_months} months after lapse"
        )
    if entitled and release.yanked:
        return Decision(True, False, (*reasons, "yanked: not offered"))
    return Decision(entitled, entitled, tuple(reasons))


def _carve_out_applies(
    policy: ProductPolicy, release: ReleaseFacts, status: MaintenanceStatus, owned: frozenset[str]
) -> bool:
    return (
        status.status == "lapsed"
        and status.lapsed_at is not None
        and policy.security_carveout_months > 0
        and release.kind == "security"
        and release.line in owned
        and release.published_at < add_months(status.lapsed_at, policy.security_carveout_months)
    )


def owned_lines(
    lic: LicenseFacts,
    policy: ProductPolicy,
    releases: Iterable[ReleaseFacts],
    status: MaintenanceStatus,
) -> frozenset[str]:
    """Lines the customer owns: some release of it was published by the cutoff (what they paid
    for, whatever the lapse policy says about downloading it now)."""
    return frozenset(
        r.line
        for r in releases
        if status.covers(r.published_at)
        and r.product == lic.product
        and customization_allows(lic, policy, r)
    )
