"""Entitlement rules (DESIGN.md "Entitlement rules"): pure functions of facts and ``now``.

No Flask, no database, no clock: the DB layer builds frozen *facts* from its rows and passes
``now``; these functions only compute. Every instant they return is in UTC.

How the rules read here:

* Contract dates are whole days in the vendor's time zone (``ProductPolicy.timezone``): a
  contract that ends on 2026-12-31 covers until 2027-01-01 00:00 *there*. Maintenance contracts
  for the product or for all products are merged where they overlap or touch (one ends the day
  before the next starts) into covered periods.
* Status at ``now`` (rule 2): ``active`` inside a covered period, ``expiring`` in its last
  ``expiring_window_days`` local days, ``grace`` for ``grace_days`` local days after it,
  ``lapsed`` after that, ``none`` if no period has begun yet (a future-dated contract does not
  cover now). A suspended or revoked license, or one for another product, has status ``none``
  with a message that says why, and nothing is entitled.
* Cutoff (rule 3): ``now`` while active, expiring or in grace; after a lapse, the instant the last
  covered period ended (the start of the day after ``ends_on``). A release is entitled when it
  was published on or before the last covered instant: ``published_at <= now`` while covered,
  ``published_at < cutoff`` after a lapse (the cutoff instant itself belongs to the first
  uncovered day).
* Gaps between contracts: while a customer is in a gap, releases published in it are *not*
  entitled (the cutoff is the end of the earlier contract). Once a later contract covers now,
  the cutoff moves to now and the gap's releases are restored with everything else (rule 8);
  after that later contract lapses they stay entitled, because they were published before its
  end. Entitlement is a cutoff, not a union of periods.
* Lapse policy (rule 6): ``revoke`` takes every download away once lapsed (not during grace).
  A security carve-out of N months entitles the security revisions, published from the lapse
  until N calendar months later (vendor zone), of every line the customer *owns* — a line with at
  least one release entitled by the cutoff rule, whatever the lapse policy. The carve-out is an
  explicit grant, so it applies under ``revoke`` too.
* Customized builds (rule 4): a release with customers reaches only those customers, and only
  when a ``customization`` contract (for the product or all products) covers its publication
  instant; the maintenance cutoff applies on top.
* Yanked releases (rule 5) stay *entitled* (downloads and signed manifests remain valid) but are
  not *offerable*: :class:`Decision` carries both.
* Line lifecycle (rule 7) does not change what a license may download; it changes what a check
  offers to an installation, so it lives in :mod:`server.domain.offers`.

Customer-facing sentences are :class:`~server.domain.messages.Text` values, rendered in the
reader's language at the edge (``server/domain/messages.py``); decision reasons, for operators,
live in :data:`REASONS`.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from packaging.version import Version

from server.domain.messages import Text, _
from server.domain.vocabulary import (
    ContractKind,
    LapsePolicy,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
    Severity,
)

DEFAULT_DEADLINES: Mapping[str, int] = {
    Severity.CRITICAL: 8,
    Severity.SERIOUS: 24,
    Severity.MINOR: 72,
}

# Bound once: reading a member off an Enum class costs about 0.3 µs on Python 3.11, and these are
# compared for every release an offer walks.
_ACTIVE_LICENSE = LicenseStatus.ACTIVE
_LAPSED = Maintenance.LAPSED
_REVOKE = LapsePolicy.REVOKE
_SECURITY = ReleaseKind.SECURITY

# Why a decision came out as it did: shown to operators and in a refused download's message.
REASONS: Mapping[str, str] = {
    "license_inactive": "license {status}",
    "wrong_product": "license is for another product",
    "not_published": "not yet published",
    "other_customer": "customized build for other customers",
    "no_customization": "no customization contract covers its publication",
    "no_maintenance": "no maintenance contract covers this license",
    "revoked_on_lapse": "maintenance lapsed and the product's lapse policy revokes downloads",
    "after_cutoff": "published after maintenance ended",
    "by_cutoff": "published on or before the cutoff ({status})",
    "carve_out": "security carve-out of {months} months after the lapse",
    "yanked": "yanked: not offered",
}


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class ContractFacts:
    """One contract of the license's customer."""

    kind: str  # maintenance | customization
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

    status: str  # active | suspended | revoked
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
    lapse_policy: str = LapsePolicy.FALLBACK
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
    kind: str  # update | security | version
    severity: str | None  # critical | serious | minor | None
    channel: str
    line: str  # e.g. "4.x"
    line_status: str  # supported | security-only | end-of-life
    published_at: datetime
    customers: frozenset[str] = frozenset()  # empty: everyone
    yanked: bool = False
    yank_reason: str | None = None
    recommended_version: str | None = None
    min_from: Version | None = None
    platforms: frozenset[str] = frozenset({"any"})
    rollout_percent: int = 100  # 100: everyone; 0: halted

    def __post_init__(self) -> None:
        if self.published_at.utcoffset() is None:
            raise ValueError(f"release {self.version}: published_at must be timezone-aware")
        if not 0 <= self.rollout_percent <= 100:
            raise ValueError(f"release {self.version}: rollout_percent must be 0..100")


# --------------------------------------------------------------------------- covered time


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC. Raises ValueError for a naive datetime (no reading of local time)."""
    if moment.tzinfo is UTC:
        return moment  # already (the engine converts once, then passes UTC around)
    if moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    return moment.astimezone(UTC)


@functools.lru_cache(maxsize=4096)  # every check works out a few; the same ones, mostly
def day_start(day: date, zone: str) -> datetime:
    """The instant ``day`` begins in ``zone``, in UTC.

    Where a DST change skips midnight, the day begins at the first instant that exists.
    """
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """A covered stretch: local days ``starts_on``..``ends_on`` and the UTC instants
    ``start`` (inclusive) and ``end`` (exclusive) they span."""

    start: datetime
    end: datetime
    starts_on: date
    ends_on: date

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def covered_periods(
    contracts: Iterable[ContractFacts], kind: str, product: str, zone: str
) -> list[Period]:
    """The contracts of ``kind`` for ``product`` (or all products), merged where they overlap or
    touch, oldest first."""
    spans = sorted((c.starts_on, c.ends_on) for c in contracts if c.applies_to(kind, product))
    merged: list[tuple[date, date]] = []
    for starts_on, ends_on in spans:
        if merged and starts_on <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends_on))
        else:
            merged.append((starts_on, ends_on))
    return [
        Period(day_start(s, zone), day_start(e + timedelta(days=1), zone), s, e) for s, e in merged
    ]


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, on the same wall-clock time, clamped to the end
    of a shorter month (Jan 31 + 1 month = Feb 28 or 29)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --------------------------------------------------------------------------- status (rules 2–3)


@dataclass(frozen=True)
class MaintenanceStatus:
    """Where a license's maintenance stands at one instant, and what follows from it."""

    status: Maintenance
    maintenance_ends_on: date | None  # last day of the current or last covered period
    cutoff: datetime | None  # see the module docstring; None when nothing was ever covered
    message: Text
    lapsed_at: datetime | None = None  # end of the last covered period, once it has passed
    carve_out_until: datetime | None = None  # security carve-out window end (exclusive)
    grace_ends_on: date | None = None  # last day of grace, while in grace
    next_starts_on: date | None = None  # first day of a future-dated contract, if any

    def covers(self, published_at: datetime) -> bool:
        """Was something published at ``published_at`` on or before the last covered instant?"""
        if self.cutoff is None:
            return False
        if self.status == _LAPSED:
            return published_at < self.cutoff
        return published_at <= self.cutoff


def covered_now(now: datetime) -> MaintenanceStatus:
    """The status a license would have with maintenance active at ``now`` (for "what would
    renewal bring")."""
    return MaintenanceStatus(Maintenance.ACTIVE, None, as_utc(now), Text())


def maintenance_status(
    lic: LicenseFacts, policy: ProductPolicy, now: datetime
) -> MaintenanceStatus:
    """Where the license's maintenance stands at ``now`` and the cutoff that follows.

    Raises:
        ValueError: ``now`` is naive.
    """
    now = as_utc(now)
    if lic.status != _ACTIVE_LICENSE:
        return MaintenanceStatus(
            Maintenance.NONE, None, None, _("This license is {status}.", status=lic.status)
        )
    if lic.product != policy.product:
        return MaintenanceStatus(
            Maintenance.NONE, None, None, _("This license is for another product.")
        )
    zone = policy.timezone
    periods = covered_periods(lic.contracts, ContractKind.MAINTENANCE, policy.product, zone)
    upcoming = next((p.starts_on for p in periods if p.start > now), None)
    current = next((p for p in periods if p.contains(now)), None)
    if current is not None:
        warn_from = current.ends_on + timedelta(days=1 - policy.expiring_window_days)
        if now >= day_start(warn_from, zone):
            message = _(
                "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
                ends=current.ends_on,
            )
            return MaintenanceStatus(Maintenance.EXPIRING, current.ends_on, now, message)
        message = _("Maintenance is active until {ends}.", ends=current.ends_on)
        return MaintenanceStatus(Maintenance.ACTIVE, current.ends_on, now, message)
    past = [p for p in periods if p.end <= now]
    if not past:
        if upcoming is not None:
            message = _("Maintenance starts on {starts}.", starts=upcoming)
            return MaintenanceStatus(Maintenance.NONE, None, None, message, next_starts_on=upcoming)
        return MaintenanceStatus(
            Maintenance.NONE,
            None,
            None,
            _("This license has no maintenance contract. Buy maintenance to receive updates."),
        )
    last = past[-1]
    grace_ends_on = last.ends_on + timedelta(days=policy.grace_days)
    if now < day_start(grace_ends_on + timedelta(days=1), zone):
        message = _(
            "Maintenance ended on {ends}; the grace period lasts until {grace_ends}. Renew now to keep receiving updates.",
            ends=last.ends_on,
            grace_ends=grace_ends_on,
        )
        return MaintenanceStatus(
            Maintenance.GRACE,
            last.ends_on,
            now,
            message,
            lapsed_at=last.end,
            grace_ends_on=grace_ends_on,
            next_starts_on=upcoming,
        )
    return _lapsed(last, policy, now, upcoming)


def _lapsed(
    last: Period, policy: ProductPolicy, now: datetime, upcoming: date | None
) -> MaintenanceStatus:
    carve_out_until = None
    if policy.security_carveout_months > 0:
        local_lapse = last.end.astimezone(ZoneInfo(policy.timezone))
        carve_out_until = add_months(local_lapse, policy.security_carveout_months).astimezone(UTC)
    message = (
        _(
            "Maintenance ended on {ends}. Downloads for this product require active maintenance; renew to receive releases again.",
            ends=last.ends_on,
        )
        if policy.lapse_policy == LapsePolicy.REVOKE
        else _(
            "Maintenance ended on {ends}. You keep every release published until then; renew to get newer ones.",
            ends=last.ends_on,
        )
    )
    if carve_out_until is not None and now < carve_out_until:
        until = (carve_out_until.astimezone(ZoneInfo(policy.timezone)) - timedelta(days=1)).date()
        message += _(
            " Security revisions of the versions you own continue until {until}.", until=until
        )
    if upcoming is not None:
        message += _(" Your renewed maintenance starts on {starts}.", starts=upcoming)
    return MaintenanceStatus(
        Maintenance.LAPSED,
        last.ends_on,
        last.end,
        message,
        lapsed_at=last.end,
        carve_out_until=carve_out_until,
        next_starts_on=upcoming,
    )


# --------------------------------------------------------------------------- decisions (rules 1–6)


@dataclass(frozen=True)
class Decision:
    """May a license have a release: ``entitled`` to download it (its signed manifest stays
    valid), ``offerable`` as an update (entitled and not yanked), and why."""

    entitled: bool
    offerable: bool
    reasons: tuple[str, ...]


def _refused(key: str, **values: object) -> Decision:
    if not values:  # the common refusals are constants: the offer walk makes many of them
        return _REFUSALS[key]
    return Decision(False, False, (REASONS[key].format(**values),))


_BY_CUTOFF = {status: REASONS["by_cutoff"].format(status=status) for status in Maintenance}
_REFUSALS = {
    key: Decision(False, False, (text,)) for key, text in REASONS.items() if "{" not in text
}


def customization_allows(lic: LicenseFacts, policy: ProductPolicy, release: ReleaseFacts) -> bool:
    """Rule 4: a customized build reaches only its customers, and only when a customization
    contract covers its publication."""
    return _customization_reason(lic, policy, release) is None


def _customization_reason(
    lic: LicenseFacts, policy: ProductPolicy, release: ReleaseFacts
) -> str | None:
    if not release.customers:
        return None
    if lic.customer not in release.customers:
        return "other_customer"
    periods = covered_periods(
        lic.contracts, ContractKind.CUSTOMIZATION, release.product, policy.timezone
    )
    if any(p.contains(release.published_at) for p in periods):
        return None
    return "no_customization"


def decide(
    lic: LicenseFacts,
    policy: ProductPolicy,
    release: ReleaseFacts,
    now: datetime,
    *,
    owned_lines: frozenset[str] | None = None,
    releases: Iterable[ReleaseFacts] | None = None,
    status: MaintenanceStatus | None = None,
) -> Decision:
    """May this license have this release at ``now``? (rules 1–6)

    Args:
        owned_lines: lines the customer owns, for the security carve-out (:func:`owned_lines`).
        releases: the product's releases, from which owned lines are worked out when
            ``owned_lines`` is not given and the carve-out could apply. With neither, the
            customer owns no line and the carve-out grants nothing.
        status: a precomputed :func:`maintenance_status` for the same license and ``now``.

    Raises:
        ValueError: ``now`` is naive.
    """
    now = as_utc(now)
    if lic.status != _ACTIVE_LICENSE:
        return _refused("license_inactive", status=lic.status)
    if not release.product == lic.product == policy.product:
        return _refused("wrong_product")
    if release.published_at > now:
        return _refused("not_published")
    refusal = _customization_reason(lic, policy, release)
    if refusal is not None:
        return _refused(refusal)
    if status is None:
        status = maintenance_status(lic, policy, now)
    if status.cutoff is None:
        return _refused("no_maintenance")
    revoked = status.status == _LAPSED and policy.lapse_policy == _REVOKE
    if status.covers(release.published_at) and not revoked:
        return _granted(_BY_CUTOFF[status.status], release.yanked)
    if _carve_out_window(status, release):
        owned = owned_lines
        if owned is None:
            owned = _lines_owned(lic, policy, releases or (), status)
        if release.line not in owned:
            return _refused("revoked_on_lapse" if revoked else "after_cutoff")
        reason = REASONS["carve_out"].format(months=policy.security_carveout_months)
        return _granted(reason, release.yanked)
    return _refused("revoked_on_lapse" if revoked else "after_cutoff")


@functools.lru_cache(maxsize=256)
def _granted(reason: str, yanked: bool) -> Decision:
    """An entitled decision; there are few distinct ones, shared (decisions are immutable)."""
    if yanked:
        return Decision(True, False, (reason, REASONS["yanked"]))
    return Decision(True, True, (reason,))


def _carve_out_window(status: MaintenanceStatus, release: ReleaseFacts) -> bool:
    """A security revision published between the lapse and the end of the carve-out?"""
    return (
        status.status == _LAPSED
        and release.kind == _SECURITY
        and status.lapsed_at is not None
        and status.carve_out_until is not None
        and status.lapsed_at <= release.published_at < status.carve_out_until
    )


def may_be_entitled(status: MaintenanceStatus, release: ReleaseFacts) -> bool:
    """A cheap necessary condition of ``decide(..., status=status).entitled``: the release is
    covered by the cutoff or inside the security carve-out window. False means :func:`decide`
    would refuse it; True means ask :func:`decide`. Lets the offer walk skip, without building a
    decision, the releases a lapsed customer has no right to."""
    return status.covers(release.published_at) or _carve_out_window(status, release)


def carve_out_possible(policy: ProductPolicy, status: MaintenanceStatus) -> bool:
    """Could the security carve-out entitle anything at this status? (owned lines matter)"""
    return status.status == _LAPSED and policy.security_carveout_months > 0


def _lines_owned(
    lic: LicenseFacts,
    policy: ProductPolicy,
    releases: Iterable[ReleaseFacts],
    status: MaintenanceStatus,
) -> frozenset[str]:
    return frozenset(
        r.line
        for r in releases
        if r.product == lic.product
        and status.covers(r.published_at)
        and _customization_reason(lic, policy, r) is None
    )


def owned_lines(
    lic: LicenseFacts,
    policy: ProductPolicy,
    releases: Iterable[ReleaseFacts],
    status: MaintenanceStatus,
) -> frozenset[str]:
    """Lines the customer owns: at least one of its releases is entitled by the cutoff rule
    (what they paid for, whatever the lapse policy now says about downloading it)."""
    return _lines_owned(lic, policy, releases, status)
