"""Covered time and maintenance status (DESIGN.md entitlement rules 2–3): contract days in the
vendor's zone merged into covered periods, and where a license's maintenance stands at ``now``
with the cutoff that follows. Pure, like :mod:`server.domain.entitlements`, whose docstring
narrates how the rules read."""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.facts import ContractFacts, LicenseFacts, ProductPolicy
from server.domain.messages import Text, _
from server.domain.vocabulary import ContractKind, LapsePolicy, LicenseStatus, Maintenance

# Bound once: reading a member off an Enum class costs about 0.3 µs on Python 3.11, and
# MaintenanceStatus.covers runs for every release an offer walks.
_ACTIVE_LICENSE = LicenseStatus.ACTIVE
_LAPSED = Maintenance.LAPSED


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

    def signed_cutoff(self, lapse_policy: LapsePolicy) -> datetime | None:
        """The cutoff a signed answer or bundle statement carries: none once lapsed under the
        ``revoke`` policy, which takes every download away (rule 6), else :attr:`cutoff`."""
        if self.status == _LAPSED and lapse_policy == LapsePolicy.REVOKE:
            return None
        return self.cutoff


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
