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

The facts are in :mod:`server.domain.facts`; covered time and the status at ``now`` (rules 2–3)
in :mod:`server.domain.coverage`; this module decides (rules 1, 3–6).

Customer-facing sentences are :class:`~server.domain.messages.Text` values, rendered in the
reader's language at the edge (``server/domain/messages.py``); decision reasons, for operators,
live in :data:`REASONS`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from server.domain.coverage import MaintenanceStatus, as_utc, covered_periods, maintenance_status
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.vocabulary import (
    ContractKind,
    LapsePolicy,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
)

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
