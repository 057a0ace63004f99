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
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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
_UPDATE = ReleaseKind.UPDATE
_VERSION = ReleaseKind.VERSION
_LAPSED = Maintenance.LAPSED
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
    installed version instead of the whole history. :meth:`candidates` keeps, per kind of
    installation, the releases it could be offered at all (worked out on first use, then kept with
    the index).
    """

    newest_first: tuple[ReleaseFacts, ...]
    by_version: Mapping[Version, ReleaseFacts]
    latest_published_first: tuple[ReleaseFacts, ...]
    line_statuses: Mapping[str, str]
    channels: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    _candidates: dict[tuple[str, str, bool], Candidates] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, releases: Iterable[ReleaseFacts]) -> ReleaseIndex:
        ordered = tuple(sorted(releases, key=lambda r: r.version, reverse=True))
        by_date = tuple(sorted(ordered, key=lambda r: r.published_at, reverse=True))
        lines = {r.line: r.line_status for r in ordered}
        return cls(
            ordered,
            {r.version: r for r in ordered},
            by_date,
            lines,
            channels=frozenset(r.channel for r in ordered),
            platforms=frozenset(p for r in ordered for p in r.platforms),
            products=frozenset(r.product for r in ordered),
        )

    def published_since(self, moment: datetime) -> Iterator[ReleaseFacts]:
        """Releases published at or after ``moment``, latest first."""
        for release in self.latest_published_first:
            if release.published_at < moment:
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

    def candidates(self, channel: str, platform: str, *, way_out: bool) -> Candidates:
        """The releases an installation on ``channel`` and ``platform`` could ever be offered:
        on its channel, for its platform, allowed by its line's lifecycle (``way_out``: it needs
        a way out of an end-of-life line) and not yanked.

        A channel or platform that no release names filters exactly as ``stable`` or ``any``
        would, so it shares their entry: the entries are bounded by the catalogue, whatever the
        requests name.
        """
        if channel not in self.channels:
            channel = DEFAULT_CHANNEL
        if platform not in self.platforms:
            platform = _ANY_PLATFORM
        key = (channel, platform, way_out)
        found = self._candidates.get(key)
        if found is None:
            found = Candidates.of(
                r
                for r in self.newest_first
                if not r.yanked
                and on_channel(r, channel)
                and for_platform(r, platform)
                and line_allows(r, way_out=way_out)
            )
            self._candidates[key] = found  # a race builds an equal entry twice: harmless
        return found


@dataclass(frozen=True)
class Tally:
    """Releases counted for the renewal prompt: how many, of which kind, the newest and oldest
    version, and how many are customized builds."""

    total: int = 0
    updates: int = 0
    security: int = 0
    versions: int = 0
    newest: Version | None = None
    oldest: Version | None = None
    customized: int = 0

    def plus(self, release: ReleaseFacts) -> Tally:
        version = release.version
        return Tally(
            self.total + 1,
            self.updates + (release.kind == _UPDATE),
            self.security + (release.kind == _SECURITY),
            self.versions + (release.kind == _VERSION),
            version if self.newest is None or version > self.newest else self.newest,
            version if self.oldest is None or version < self.oldest else self.oldest,
            self.customized + bool(release.customers),
        )


@dataclass(frozen=True)
class Candidates:
    """One kind of installation's candidate releases (:meth:`ReleaseIndex.candidates`), ordered
    so that a check finds by bisection the few that can matter to it.

    ``by_version`` is oldest version first and ``earliest_from[i]`` the earliest publication
    among ``by_version[i:]``: everything above the first position whose ``earliest_from`` is
    past an instant was published after it. ``dates`` are the publication instants in order and
    ``tallies[i]`` counts the releases published at or after ``dates[i]`` (one more entry, for
    none).
    """

    by_version: tuple[ReleaseFacts, ...]
    versions: tuple[Version, ...]
    earliest_from: tuple[datetime, ...]
    dates: tuple[datetime, ...]
    tallies: tuple[Tally, ...]

    @classmethod
    def of(cls, newest_first: Iterable[ReleaseFacts]) -> Candidates:
        by_version = tuple(newest_first)[::-1]
        earliest: list[datetime] = []
        for release in reversed(by_version):
            moment = release.published_at
            earliest.append(moment if not earliest or moment < earliest[-1] else earliest[-1])
        by_date = sorted(by_version, key=lambda r: r.published_at)
        tallies = [Tally()]
        for release in reversed(by_date):
            tallies.append(tallies[-1].plus(release))
        return cls(
            by_version,
            tuple(r.version for r in by_version),
            tuple(reversed(earliest)),
            tuple(r.published_at for r in by_date),
            tuple(reversed(tallies)),
        )

    def above(self, installed: Version) -> int:
        """Position of the first release newer than ``installed``."""
        return bisect_right(self.versions, installed)

    def entitled_below(self, status: MaintenanceStatus) -> int:
        """Position above which no release can be entitled at ``status``: each was published
        after the cutoff and after any carve-out window (:func:`may_be_entitled` is False)."""
        if status.cutoff is None:
            return 0
        if status.status == _LAPSED:
            until = status.cutoff
            if status.carve_out_until is not None and status.carve_out_until > until:
                until = status.carve_out_until
            return bisect_left(self.earliest_from, until)
        return bisect_right(self.earliest_from, status.cutoff)


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
    candidates = index.candidates(channel, platform, way_out=way_out)
    chosen = None
    # Newest first, from the newest release the status may entitle down to the installed version.
    for at in range(
        candidates.entitled_below(status) - 1, candidates.above(installed_version) - 1, -1
    ):
        release = candidates.by_version[at]
        if (
            steps_from(release, installed_version)
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
    if not missing.total:
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
) -> Tally:
    line = index.line_of(installed, installed_line)
    way_out = line is not None and line[1] == END_OF_LIFE
    candidates = index.candidates(channel, platform, way_out=way_out)
    if _by_publication_alone(policy, index, status):
        # Missing is then exactly what was published from the cutoff (from the start, without
        # one) until now: counted in advance when that stretch holds no customized build, no
        # release published after now and nothing at or below the installed version.
        start = 0 if status.cutoff is None else bisect_left(candidates.dates, status.cutoff)
        tally = candidates.tallies[start]
        if (
            not tally.customized
            and (tally.oldest is None or tally.oldest > installed)
            and (not candidates.dates or candidates.dates[-1] <= now)
        ):
            return tally
    owned = _owned_if_needed(lic, policy, index, status)
    renewed = covered_now(now)
    missing = Tally()
    for r in candidates.by_version[candidates.above(installed) :]:
        if (
            not (
                may_be_entitled(status, r)
                and decide(lic, policy, r, now, owned_lines=owned, status=status).entitled
            )
            and decide(lic, policy, r, now, status=renewed).entitled
        ):
            missing = missing.plus(r)
    return missing


def _by_publication_alone(
    policy: ProductPolicy, index: ReleaseIndex, status: MaintenanceStatus
) -> bool:
    """For an active license of the policy's product (renewal_summary checks): does the status
    make "entitled now" a matter of publication before the cutoff only, and "entitled once
    renewed" one of publication by now, for every release except customized builds?

    So with no maintenance yet (no cutoff), and after a lapse under perpetual fallback without
    a security carve-out; every release must be of the policy's product.
    """
    if index.products - {policy.product}:
        return False
    if status.cutoff is None:
        return True
    return (
        status.status == _LAPSED
        and policy.lapse_policy == LapsePolicy.FALLBACK
        and status.carve_out_until is None
    )


def _summarize(missing: Tally, status: MaintenanceStatus) -> RenewalSummary:
    newest = missing.newest
    values = {
        "releases": ngettext("{n} newer release", "{n} newer releases", missing.total),
        "security": ngettext("{n} security revision", "{n} security revisions", missing.security),
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
    return RenewalSummary(newest, missing.updates, missing.security, missing.versions, message)
