"""What a check offers: the best entitled release, the notices, and the renewal prompt.

Pure functions over the facts of :mod:`server.domain.entitlements`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.version import Version

from server.domain.entitlements import (
    LicenseFacts,
    MaintenanceStatus,
    ProductPolicy,
    ReleaseFacts,
    customization_allows,
    decide,
    maintenance_status,
    owned_lines,
)

NOTICES = {
    "end_of_life": "{line} is no longer supported. {way_out}",
    "end_of_life_way_out": "Update to {version} to stay supported.",
    "end_of_life_no_way": "Renew maintenance to move to a supported version.",
    "yanked": "Version {version} was withdrawn: {reason}.",
    "yanked_recommended": " Move to {recommended}.",
}
RENEWAL = {
    "missing": "Renew maintenance to receive {total} newer release(s), including {security} security revision(s); newest: {newest}.",
    "never": "Buy maintenance to receive {total} newer release(s), including {security} security revision(s); newest: {newest}.",
    "expiring": "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
}


@dataclass(frozen=True)
class Offer:
    release: ReleaseFacts
    apply_by: datetime | None


@dataclass(frozen=True)
class OfferResult:
    offer: Offer | None
    notices: tuple[dict[str, Any], ...]
    status: MaintenanceStatus


@dataclass(frozen=True)
class RenewalSummary:
    newest_version: Version | None
    updates: int
    security: int
    versions: int
    message: str


def rollout_bucket(installation_id: str, release_id: int) -> int:
    """A stable bucket 0–99 for this installation and release."""
    digest = hashlib.sha256(f"{installation_id}:{release_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def in_rollout(release: ReleaseFacts, installation_id: str) -> bool:
    if release.kind == "security" and release.severity == "critical":
        return True  # critical security revisions bypass staged rollout
    if release.rollout_percent >= 100:
        return True
    return rollout_bucket(installation_id, release.id) < release.rollout_percent


def on_channel(release: ReleaseFacts, channel: str) -> bool:
    """An installation on channel C receives C's releases and stable ones."""
    return release.channel in (channel, "stable")


def for_platform(release: ReleaseFacts, platform: str) -> bool:
    return platform in release.platforms or "any" in release.platforms


def apply_by(release: ReleaseFacts, policy: ProductPolicy, now: datetime) -> datetime | None:
    if release.severity is None:
        return None
    hours = policy.severity_deadlines.get(release.severity)
    if hours is None:
        return None
    return max(release.published_at + timedelta(hours=hours), now)


@dataclass(frozen=True)
class ReleaseIndex:
    """A product's releases newest first, with a lookup by version.

    Built once per catalogue revision, so that a check walks only the few releases above the
    installed version instead of the whole history.
    """

    newest_first: tuple[ReleaseFacts, ...]
    by_version: Mapping[Version, ReleaseFacts]
    latest_published_first: tuple[ReleaseFacts, ...]

    @classmethod
    def of(cls, releases: Iterable[ReleaseFacts]) -> ReleaseIndex:
        ordered = tuple(sorted(releases, key=lambda r: r.version, reverse=True))
        by_date = tuple(sorted(ordered, key=lambda r: r.published_at, reverse=True))
        return cls(ordered, {r.version: r for r in ordered}, by_date)

    def published_since(self, moment: datetime) -> Iterator[ReleaseFacts]:
        """Releases published at or after ``moment``, latest first."""
        for release in self.latest_published_first:
            if release.published_at < moment:
                return
            yield release

    def newer_than(self, installed: Version) -> Iterator[ReleaseFacts]:
        for release in self.newest_first:
            if release.version <= installed:
                return
            yield release

    def line_of(self, installed: Version) -> tuple[str, str] | None:
        """The installed version's line and status (by its release, else by its major)."""
        release = self.by_version.get(installed)
        if release is not None:
            return release.line, release.line_status
        guess = f"{installed.major}.x"
        for r in self.newest_first:
            if r.line == guess:
                return r.line, r.line_status
        return None


def _lazy_owned(
    lic: LicenseFacts, policy: ProductPolicy, index: ReleaseIndex, status: MaintenanceStatus
) -> frozenset[str]:
    """Owned lines matter only for the security carve-out after a lapse; skip the walk otherwise."""
    if status.status != "lapsed" or policy.security_carveout_months <= 0:
        return frozenset()
    return owned_lines(lic, policy, index.newest_first, status)


def select_offer(
    lic: LicenseFacts,
    policy: ProductPolicy,
    index: ReleaseIndex,
    *,
    installed_version: Version,
    platform: str,
    channel: str,
    installation_id: str,
    now: datetime,
    status: MaintenanceStatus | None = None,
) -> OfferResult:
    """The highest entitled release newer than installed, with the notices for the installation.

    Candidates: entitled and not yanked, on the channel (or stable) and platform (or any), in the
    staged rollout, not on an end-of-life line, and only security revisions from a security-only
    line. ``min_from`` makes stepping stones: a candidate whose ``min_from`` is newer than the
    installed version is skipped for a lower one. Never a downgrade. The walk goes newest first
    and stops at the first acceptable release. ``status`` may be passed when already computed.
    """
    status = status or maintenance_status(lic, policy, now)
    owned = _lazy_owned(lic, policy, index, status)
    chosen = None
    for r in index.newer_than(installed_version):
        if (
            on_channel(r, channel)
            and for_platform(r, platform)
            and r.line_status != "end-of-life"
            and (r.line_status != "security-only" or r.kind == "security")
            and (r.min_from is None or installed_version >= r.min_from)
            and in_rollout(r, installation_id)
            and decide(lic, policy, r, now, owned_lines=owned, status=status).offerable
        ):
            chosen = r
            break
    offer = Offer(chosen, apply_by(chosen, policy, now)) if chosen else None
    return OfferResult(offer, _notices(index, installed_version, offer), status)


def _notices(
    index: ReleaseIndex, installed: Version, offer: Offer | None
) -> tuple[dict[str, Any], ...]:
    notices: list[dict[str, Any]] = []
    line = index.line_of(installed)
    if line is not None and line[1] == "end-of-life":
        way_out = (
            NOTICES["end_of_life_way_out"].format(version=offer.release.version)
            if offer
            else NOTICES["end_of_life_no_way"]
        )
        notices.append(
            {
                "code": "end_of_life",
                "line": line[0],
                "message": NOTICES["end_of_life"].format(line=line[0], way_out=way_out),
            }
        )
    current = index.by_version.get(installed)
    if current is not None and current.yanked:
        message = NOTICES["yanked"].format(
            version=current.version, reason=current.yank_reason or "withdrawn"
        )
        if current.recommended_version:
            message += NOTICES["yanked_recommended"].format(recommended=current.recommended_version)
        notices.append(
            {
                "code": "yanked",
                "message": message,
                "reason": current.yank_reason,
                "recommended_version": current.recommended_version,
            }
        )
    return tuple(notices)


def renewal_summary(
    lic: LicenseFacts,
    policy: ProductPolicy,
    index: ReleaseIndex,
    *,
    installed_version: Version,
    platform: str,
    channel: str,
    now: datetime,
    status: MaintenanceStatus | None = None,
) -> RenewalSummary | None:
    """What renewing would bring: releases it would get that the license is not entitled to now.

    None while maintenance covers now (active or grace: every published release is entitled);
    an expiring license gets a reminder.
    """
    if lic.status != "active" or lic.product != policy.product:
        return None
    status = status or maintenance_status(lic, policy, now)
    if status.status == "expiring":
        return RenewalSummary(
            None, 0, 0, 0, RENEWAL["expiring"].format(ends=status.maintenance_ends_on)
        )
    if status.status in ("active", "grace"):
        return None
    owned = _lazy_owned(lic, policy, index, status)
    if (
        status.status == "lapsed"
        and policy.lapse_policy == "fallback"
        and status.cutoff is not None
    ):
        # Under perpetual fallback everything published before the cutoff is entitled already:
        # only what came after it can be missing.
        pool: Iterable[ReleaseFacts] = index.published_since(status.cutoff)
    else:
        pool = index.newer_than(installed_version)
    missing = [
        r
        for r in pool
        if r.version > installed_version
        and not r.yanked
        and r.published_at <= now
        and on_channel(r, channel)
        and for_platform(r, platform)
        and r.line_status != "end-of-life"
        and customization_allows(lic, policy, r)
        and not decide(lic, policy, r, now, owned_lines=owned, status=status).entitled
    ]
    if not missing:
        return None
    newest = max(r.version for r in missing)
    counts = {
        kind: sum(1 for r in missing if r.kind == kind)
        for kind in ("update", "security", "version")
    }
    template = RENEWAL["never"] if status.status == "none" else RENEWAL["missing"]
    message = template.format(total=len(missing), security=counts["security"], newest=newest)
    return RenewalSummary(newest, counts["update"], counts["security"], counts["version"], message)
