"""What a check offers: the best entitled release, the notices, and the renewal prompt.

Pure functions over the facts of :mod:`server.domain.entitlements`; ``now`` is a parameter.

The offer for one installation (DESIGN.md "What the check offers") is the highest release newer
than the installed version that passes, in this order of cheapness:

1. channel: an installation on channel C receives releases of C and of ``stable``;
2. platform: an artifact for the installation's platform or for ``any``;
3. line lifecycle (rule 7): nothing from an end-of-life line; from a security-only line only
   security revisions — except for an installation on an end-of-life line, which is offered the
   way out: the newest release it may have, whatever its kind;
4. ``min_from``: a release that requires ``min_from`` M is offered only to installations at M or
   newer; older ones get a lower release (M itself, say) first — a stepping stone;
5. staged rollout: a deterministic bucket 0–99 from the installation id and the release id,
   offered when the bucket is below the rollout percent; critical security revisions bypass it;
6. entitlement: :func:`~server.domain.entitlements.decide` says *offerable* (entitled and not
   yanked).

The walk goes newest first and stops at the first release that passes; it never goes below the
installed version, so an offer is never a downgrade. Alongside, the installation is told when
its line is end of life or its release was yanked, and what renewal would bring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.version import Version

from server.domain.coverage import MaintenanceStatus, as_utc, covered_now, maintenance_status
from server.domain.entitlements import carve_out_possible, decide, may_be_entitled, owned_lines
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.messages import Text, _, ngettext
from server.domain.vocabulary import (
    ANY_PLATFORM,
    DEFAULT_CHANNEL,
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    Maintenance,
    ReleaseKind,
    Severity,
)

# Bound once: reading a member off an Enum class costs about 0.3 µs on Python 3.11, and these are
# compared for every candidate release of every check.
END_OF_LIFE = LineStatus.END_OF_LIFE
SECURITY_ONLY = LineStatus.SECURITY_ONLY
_SECURITY = ReleaseKind.SECURITY
_CRITICAL = Severity.CRITICAL
_ANY_PLATFORM = ANY_PLATFORM


@dataclass(frozen=True)
class Offer:
    """The release a check offers, and when the agent must have applied it (None: whenever
    convenient)."""

    release: ReleaseFacts
    apply_by: datetime | None


@dataclass(frozen=True)
class OfferResult:
    """The offer (if any), the notices for the installation, and the status it was based on."""

    offer: Offer | None
    notices: tuple[dict[str, Any], ...]
    status: MaintenanceStatus


@dataclass(frozen=True)
class RenewalSummary:
    """What the customer is missing: the newest release renewal would bring, and how many
    updates, security revisions and versions. For an expiring or grace status, possibly nothing
    yet (``newest_version`` None), with a reminder."""

    newest_version: Version | None
    updates: int
    security: int
    versions: int
    message: Text


# --------------------------------------------------------------------------- the release index


@dataclass(frozen=True)
class ReleaseIndex:
    """A product's releases newest first, with lookups by version and by line.

    Built once per catalogue revision, so that a check walks only the few releases above the
    installed version instead of the whole history.
    """

    newest_first: tuple[ReleaseFacts, ...]
    by_version: Mapping[Version, ReleaseFacts]
    latest_published_first: tuple[ReleaseFacts, ...]
    line_statuses: Mapping[str, str]

    @classmethod
    def of(cls, releases: Iterable[ReleaseFacts]) -> ReleaseIndex:
        ordered = tuple(sorted(releases, key=lambda r: r.version, reverse=True))
        by_date = tuple(sorted(ordered, key=lambda r: r.published_at, reverse=True))
        lines = {r.line: r.line_status for r in ordered}
        return cls(ordered, {r.version: r for r in ordered}, by_date, lines)

    def published_since(self, moment: datetime) -> Iterator[ReleaseFacts]:
        """Releases published at or after ``moment``, latest first."""
        for release in self.latest_published_first:
            if release.published_at < moment:
                return
            yield release

    def newer_than(self, installed: Version) -> Iterator[ReleaseFacts]:
        """Releases above ``installed``, newest first."""
        for release in self.newest_first:
            if release.version <= installed:
                return
            yield release

    def line_of(self, installed: Version, line: str | None = None) -> tuple[str, str] | None:
        """The installed version's line and its status: ``line`` when the agent knows it, else
        the installed release's, else the line named after its major version ("4.x")."""
        if line is None:
            release = self.by_version.get(installed)
            line = release.line if release is not None else f"{installed.major}.x"
        status = self.line_statuses.get(line)
        return (line, status) if status is not None else None


def as_index(releases: ReleaseIndex | Iterable[ReleaseFacts]) -> ReleaseIndex:
    """``releases`` as an index (built when given a plain iterable)."""
    return releases if isinstance(releases, ReleaseIndex) else ReleaseIndex.of(releases)


# --------------------------------------------------------------------------- candidate filters


def rollout_bucket(installation_id: str, release_id: int) -> int:
    """The installation's stable bucket 0–99 for one release:
    ``int(sha256(f"{installation_id}:{release_id}")) % 100``."""
    digest = hashlib.sha256(f"{installation_id}:{release_id}".encode()).digest()
    return int.from_bytes(digest, "big") % 100


def in_rollout(release: ReleaseFacts, installation_id: str) -> bool:
    """Is this installation inside the release's staged rollout?

    Critical security revisions bypass a *staged* rollout (1–99 %) but not a *halt* (0 %): a
    rollout is halted, by hand or by the failure reports, because installs are breaking.
    """
    if release.rollout_percent >= 100:
        return True
    if release.rollout_percent <= 0:
        return False
    if release.kind == _SECURITY and release.severity == _CRITICAL:
        return True
    return rollout_bucket(installation_id, release.id) < release.rollout_percent


def on_channel(release: ReleaseFacts, channel: str) -> bool:
    """An installation on channel C receives C's releases and stable ones."""
    return release.channel in (channel, DEFAULT_CHANNEL)


def for_platform(release: ReleaseFacts, platform: str) -> bool:
    """Has the release an artifact for ``platform`` or for every platform?"""
    return platform in release.platforms or _ANY_PLATFORM in release.platforms


def line_allows(release: ReleaseFacts, *, way_out: bool) -> bool:
    """Rule 7 for one candidate: never from an end-of-life line; from a security-only line only
    security revisions, unless the installation needs a way out of an end-of-life line."""
    if release.line_status == END_OF_LIFE:
        return False
    return release.line_status != SECURITY_ONLY or way_out or release.kind == _SECURITY


def steps_from(release: ReleaseFacts, installed: Version) -> bool:
    """May ``installed`` move straight to ``release`` (its ``min_from``, if any, is reached)?"""
    return release.min_from is None or installed >= release.min_from


def apply_by(release: ReleaseFacts, policy: ProductPolicy, now: datetime) -> datetime | None:
    """``published_at`` plus the severity's deadline, or ``now`` when that is already past;
    None for a release without a severity (apply when convenient)."""
    if release.severity is None:
        return None
    hours = policy.severity_deadlines.get(release.severity)
    if hours is None:
        return None
    return max(as_utc(release.published_at + timedelta(hours=hours)), as_utc(now))


# --------------------------------------------------------------------------- the offer


def _owned_if_needed(
    lic: LicenseFacts, policy: ProductPolicy, index: ReleaseIndex, status: MaintenanceStatus
) -> frozenset[str]:
    """Owned lines matter only for the security carve-out after a lapse; skip the walk otherwise."""
    if not carve_out_possible(policy, status):
        return frozenset()
    return owned_lines(lic, policy, index.newest_first, status)


def select_offer(
    lic: LicenseFacts,
    policy: ProductPolicy,
    releases: ReleaseIndex | Iterable[ReleaseFacts],
    *,
    installed_version: Version,
    platform: str,
    channel: str,
    installation_id: str,
    now: datetime,
    installed_line: str | None = None,
    status: MaintenanceStatus | None = None,
) -> OfferResult:
    """The highest offerable release newer than installed, with the installation's notices.

    See the module docstring for the filters. ``installed_line`` overrides the line worked out
    from the installed version; ``status`` may be passed when already computed.

    Raises:
        ValueError: ``now`` is naive.
    """
    now = as_utc(now)
    index = as_index(releases)
    if status is None:
        status = maintenance_status(lic, policy, now)
    line = index.line_of(installed_version, installed_line)
    way_out = line is not None and line[1] == END_OF_LIFE
    owned = _owned_if_needed(lic, policy, index, status)
    chosen = None
    for release in index.newer_than(installed_version):
        if (
            on_channel(release, channel)
            and for_platform(release, platform)
            and line_allows(release, way_out=way_out)
            and steps_from(release, installed_version)
            and in_rollout(release, installation_id)
            and may_be_entitled(status, release)
            and decide(lic, policy, release, now, owned_lines=owned, status=status).offerable
        ):
            chosen = release
            break
    offer = Offer(chosen, apply_by(chosen, policy, now)) if chosen is not None else None
    notices = _end_of_life_notice(line, offer) + _yanked_notice(index, installed_version)
    return OfferResult(offer, notices, status)


def _end_of_life_notice(
    line: tuple[str, str] | None, offer: Offer | None
) -> tuple[dict[str, Any], ...]:
    if line is None or line[1] != END_OF_LIFE:
        return ()
    way_out = (
        _("Update to {version} to stay supported.", version=offer.release.version)
        if offer is not None
        else _("Renew maintenance to move to a supported version.")
    )
    message = _("{line} is no longer supported. {way_out}", line=line[0], way_out=way_out)
    return ({"code": "end_of_life", "line": line[0], "message": message},)


def _yanked_notice(index: ReleaseIndex, installed: Version) -> tuple[dict[str, Any], ...]:
    current = index.by_version.get(installed)
    if current is None or not current.yanked:
        return ()
    reason = current.yank_reason or _("no reason given")
    message = _(
        "Version {version} was withdrawn: {reason}.", version=current.version, reason=reason
    )
    if current.recommended_version:
        message += _(" Move to {recommended}.", recommended=current.recommended_version)
    return (
        {
            "code": "yanked",
            "message": message,
            "reason": current.yank_reason,
            "recommended_version": current.recommended_version,
        },
    )


# --------------------------------------------------------------------------- the renewal prompt


def renewal_summary(
    lic: LicenseFacts,
    policy: ProductPolicy,
    releases: ReleaseIndex | Iterable[ReleaseFacts],
    *,
    installed_version: Version,
    platform: str,
    channel: str,
    now: datetime,
    installed_line: str | None = None,
    status: MaintenanceStatus | None = None,
) -> RenewalSummary | None:
    """What renewing maintenance now would bring this installation.

    Counts the releases newer than installed, on its channel and platform, not yanked, on a line
    it could be offered, that the license is *not* entitled to now but *would* be with
    maintenance active now. Staged rollout and ``min_from`` are ignored: they delay an update,
    they do not withhold it.

    Returns:
        None for a suspended or revoked license, a license for another product, active
        maintenance, or nothing missing; for ``expiring`` and ``grace`` a reminder with no
        releases (everything published is still entitled).
    """
    if lic.status != LicenseStatus.ACTIVE or lic.product != policy.product:
        return None
    now = as_utc(now)
    index = as_index(releases)
    if status is None:
        status = maintenance_status(lic, policy, now)
    if status.status == Maintenance.EXPIRING:
        reminder = _(
            "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
            ends=status.maintenance_ends_on,
        )
        return RenewalSummary(None, 0, 0, 0, reminder)
    if status.status == Maintenance.GRACE:
        reminder = _(
            "Maintenance ended on {ends}. Renew by {grace_ends} to keep receiving updates and security revisions.",
            ends=status.maintenance_ends_on,
            grace_ends=status.grace_ends_on,
        )
        return RenewalSummary(None, 0, 0, 0, reminder)
    if status.status == Maintenance.ACTIVE:
        return None
    missing = _missing(
        lic, policy, index, installed_version, platform, channel, now, status, installed_line
    )
    if not missing:
        return None
    return _summarize(missing, status)


def _missing(
    lic: LicenseFacts,
    policy: ProductPolicy,
    index: ReleaseIndex,
    installed: Version,
    platform: str,
    channel: str,
    now: datetime,
    status: MaintenanceStatus,
    installed_line: str | None,
) -> list[ReleaseFacts]:
    line = index.line_of(installed, installed_line)
    way_out = line is not None and line[1] == END_OF_LIFE
    pool: Iterable[ReleaseFacts]
    if (
        status.status == Maintenance.LAPSED
        and policy.lapse_policy == LapsePolicy.FALLBACK
        and status.cutoff
    ):
        # Under perpetual fallback everything published before the cutoff is entitled already:
        # only what came after it can be missing.
        pool = index.published_since(status.cutoff)
    else:
        pool = index.newer_than(installed)
    owned = _owned_if_needed(lic, policy, index, status)
    renewed = covered_now(now)
    return [
        r
        for r in pool
        if r.version > installed
        and not r.yanked
        and on_channel(r, channel)
        and for_platform(r, platform)
        and line_allows(r, way_out=way_out)
        and not (
            may_be_entitled(status, r)
            and decide(lic, policy, r, now, owned_lines=owned, status=status).entitled
        )
        and decide(lic, policy, r, now, status=renewed).entitled
    ]


def _summarize(missing: list[ReleaseFacts], status: MaintenanceStatus) -> RenewalSummary:
    counts = {k: sum(1 for r in missing if r.kind == k) for k in ReleaseKind}
    newest = max(r.version for r in missing)
    values = {
        "releases": ngettext("{n} newer release", "{n} newer releases", len(missing)),
        "security": ngettext(
            "{n} security revision", "{n} security revisions", counts[ReleaseKind.SECURITY]
        ),
        "newest": newest,
    }
    if status.next_starts_on is not None:
        message = _(
            "Your maintenance starts on {starts}; it brings {releases}, including {security}; newest: {newest}.",
            starts=status.next_starts_on,
            **values,
        )
    elif status.status == Maintenance.NONE:
        message = _(
            "Buy maintenance to receive {releases}, including {security}; newest: {newest}.",
            **values,
        )
    else:
        message = _(
            "Renew maintenance to receive {releases}, including {security}; newest: {newest}.",
            **values,
        )
    return RenewalSummary(
        newest,
        counts[ReleaseKind.UPDATE],
        counts[ReleaseKind.SECURITY],
        counts[ReleaseKind.VERSION],
        message,
    )
