"""Security-revision adoption against the severity deadline: the number a support team is
judged by.

For one published security revision R of a product, with deadline D = R's ``published_at`` plus
the product's hours for R's severity (critical 8 h, serious 24 h, minor 72 h by default; the
same instant :func:`server.domain.offers.apply_by` gives an agent at publication):

* **Expected** (the denominator) are the installations of the product that

  1. are on R's channel, or R is on ``stable`` (what a check would offer them);
  2. run a platform R has an artifact for (or R is for ``any``);
  3. were running while the deadline ran: first seen by D and seen again at or after
     ``published_at`` (an installation that went silent before R existed was never told);
  4. have a license that is active today and entitled to R at D (at ``now`` while D is still
     ahead), by the pure entitlement engine :func:`server.domain.entitlements.decide`:
     suspended, revoked, lapsed-before-publication and other customers' builds are out;
  5. were behind R: the first successful apply they reported since R's publication, of R or a
     newer release, came from a version older than R (or from an unknown one); without such a
     report, the version they run now is older than R. An installation already on R or newer
     (a backported revision to an older line, say) is not expected to apply it.

* **On time** (the numerator): the expected installations whose first such successful apply
  (``ApplyReport.outcome == ApplyOutcome.SUCCESS`` for R or any newer release of the product)
  was reported at or before D. **Late**: reported after D. **Not yet**: none reported.

The share is on time / expected. A revision whose deadline is still ahead is *in progress*; once
it has passed, the share *met* or *missed* the target (:data:`TARGET_SHARE`).

:func:`adoption_of` is a pure function of facts and ``now``; :func:`security_adoption` loads
those facts for the latest revisions with a handful of aggregate queries (none per installation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.domain import entitlements as ent
from server.domain import offers
from server.domain.coverage import as_utc
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.models import (
    ApplyReport,
    Contract,
    Customer,
    Installation,
    License,
    Product,
    Release,
)
from server.domain.row_facts import license_facts, product_policy, release_facts
from server.domain.vocabulary import ApplyOutcome, ReleaseKind

TARGET_SHARE = 0.95  # of the expected installations on time, for a deadline to count as met
LATEST = 10  # revisions shown


@dataclass(frozen=True)
class InstallationFacts:
    """What the server knows of one installation."""

    license_id: int
    uid: str
    version: Version | None  # None: not a version we can compare
    platform: str
    channel: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class AppliedFacts:
    """The first successful apply an installation reported of one release (from one version)."""

    version: Version  # the release applied
    from_version: Version | None
    at: datetime


@dataclass(frozen=True)
class RevisionAdoption:
    """How the installations expected to apply one security revision did against its deadline."""

    product: str
    version: str
    severity: str
    channel: str
    published_at: datetime
    deadline: datetime
    deadline_hours: int
    expected: int
    on_time: int
    late: int
    not_yet: int
    in_progress: bool
    target: float = TARGET_SHARE

    @property
    def share(self) -> float | None:
        """On time / expected; None when no installation was expected to apply it."""
        return self.on_time / self.expected if self.expected else None

    @property
    def percent(self) -> int | None:
        """The share in whole percent, rounded down (94.9 % is not shown as a met 95 %)."""
        return self.on_time * 100 // self.expected if self.expected else None

    @property
    def status(self) -> str:
        """``in-progress``, ``met``, ``missed`` or ``none-expected``."""
        if self.in_progress:
            return "in-progress"
        share = self.share
        if share is None:
            return "none-expected"
        return "met" if share >= self.target else "missed"


def deadline_of(revision: ReleaseFacts, policy: ProductPolicy) -> datetime | None:
    """``published_at`` plus the product's hours for the revision's severity (None: no severity)."""
    return offers.apply_by(revision, policy, revision.published_at)


def first_apply_since(
    revision: ReleaseFacts, applied: Iterable[AppliedFacts]
) -> AppliedFacts | None:
    """The earliest successful apply of the revision or a newer release since its publication."""
    candidates = [
        a for a in applied if a.version >= revision.version and a.at >= revision.published_at
    ]
    return min(candidates, key=lambda a: a.at, default=None)


def adoption_of(
    revision: ReleaseFacts,
    policy: ProductPolicy,
    installations: Iterable[InstallationFacts],
    licenses: Mapping[int, LicenseFacts],
    applied: Mapping[tuple[int, str], Sequence[AppliedFacts]],
    now: datetime,
    *,
    releases: Iterable[ReleaseFacts] = (),
    target: float = TARGET_SHARE,
) -> RevisionAdoption:
    """Expected, on time, late and not yet for one security revision (see the module docstring).

    Args:
        licenses: license id -> facts, for every installation's license.
        applied: (license id, installation uid) -> the successful applies it reported.
        releases: the product's published releases, for the security carve-out's owned lines.

    Raises:
        ValueError: the revision has no severity deadline, or ``now`` is naive.
    """
    now = as_utc(now)
    deadline = deadline_of(revision, policy)
    if deadline is None or revision.severity is None:
        raise ValueError(f"release {revision.version} has no severity deadline")
    judged_at = min(deadline, now)
    history = tuple(releases)
    entitled: dict[int, bool] = {}
    on_time = late = not_yet = 0
    for inst in installations:
        if not _was_reachable(revision, inst, deadline):
            continue
        lic = licenses.get(inst.license_id)
        if lic is None:
            continue
        if inst.license_id not in entitled:
            decision = ent.decide(lic, policy, revision, judged_at, releases=history)
            entitled[inst.license_id] = decision.entitled
        if not entitled[inst.license_id]:
            continue
        first = first_apply_since(revision, applied.get((inst.license_id, inst.uid), ()))
        if first is None:
            if inst.version is None or inst.version >= revision.version:
                continue  # already on it or newer (or unknown): nothing was expected
            not_yet += 1
        elif first.from_version is not None and first.from_version >= revision.version:
            continue  # moved between newer releases: it was never behind this revision
        elif first.at <= deadline:
            on_time += 1
        else:
            late += 1
    hours = policy.severity_deadlines[revision.severity]
    return RevisionAdoption(
        product=revision.product,
        version=str(revision.version),
        severity=revision.severity,
        channel=revision.channel,
        published_at=revision.published_at,
        deadline=deadline,
        deadline_hours=hours,
        expected=on_time + late + not_yet,
        on_time=on_time,
        late=late,
        not_yet=not_yet,
        in_progress=now < deadline,
        target=target,
    )


def _was_reachable(revision: ReleaseFacts, inst: InstallationFacts, deadline: datetime) -> bool:
    """Would a check have offered the revision to this installation while the deadline ran?"""
    return (
        offers.on_channel(revision, inst.channel)
        and offers.for_platform(revision, inst.platform)
        and inst.first_seen <= deadline
        and inst.last_seen >= revision.published_at
    )


# --------------------------------------------------------------------------- from the database


def security_adoption(
    session: Session, now: datetime, *, latest: int = LATEST, target: float = TARGET_SHARE
) -> list[RevisionAdoption]:
    """Adoption of the ``latest`` published security revisions (of every product), most recent
    first. A fixed number of queries (about a dozen, with the eager loads) whatever the number of
    revisions, licenses and installations."""
    revisions = list(
        session.scalars(
            select(Release)
            .where(
                Release.kind == ReleaseKind.SECURITY,
                Release.severity.is_not(None),
                Release.published_at.is_not(None),
                Release.manifest.is_not(None),
                Release.published_at <= now,
            )
            .order_by(Release.published_at.desc(), Release.id.desc())
            .limit(latest)
        )
    )
    if not revisions:
        return []
    product_ids = {r.product_id for r in revisions}
    since = min(r.published_at for r in revisions if r.published_at is not None)
    history = _release_facts(session, product_ids)
    installations = _installations(session, product_ids, since)
    licenses = _licenses(session, {i.license_id for _, i in installations})
    applied = _applied(session, product_ids, since, history)
    policies = {
        p.id: product_policy(p, "")
        for p in session.scalars(select(Product).where(Product.id.in_(product_ids)))
    }
    return [
        adoption_of(
            history[r.product_id][r.id],
            policies[r.product_id],
            (i for product_id, i in installations if product_id == r.product_id),
            licenses,
            applied,
            now,
            releases=history[r.product_id].values(),
            target=target,
        )
        for r in revisions
    ]


def _release_facts(session: Session, product_ids: set[int]) -> dict[int, dict[int, ReleaseFacts]]:
    rows = session.scalars(
        select(Release)
        .where(
            Release.product_id.in_(product_ids),
            Release.published_at.is_not(None),
            Release.manifest.is_not(None),
        )
        .options(
            selectinload(Release.artifacts),
            selectinload(Release.customers),
            selectinload(Release.line),
            selectinload(Release.product),
        )
    )
    facts: dict[int, dict[int, ReleaseFacts]] = defaultdict(dict)
    for release in rows:
        facts[release.product_id][release.id] = release_facts(release)
    return facts


def _installations(
    session: Session, product_ids: set[int], since: datetime
) -> list[tuple[int, InstallationFacts]]:
    rows = session.execute(
        select(
            License.product_id,
            Installation.license_id,
            Installation.uid,
            Installation.version,
            Installation.platform,
            Installation.channel,
            Installation.first_seen,
            Installation.last_seen,
        )
        .join(License, License.id == Installation.license_id)
        .where(License.product_id.in_(product_ids), Installation.last_seen >= since)
    )
    return [
        (
            product_id,
            InstallationFacts(license_id, uid, _version(version), platform, channel, first, last),
        )
        for product_id, license_id, uid, version, platform, channel, first, last in rows
    ]


def _licenses(session: Session, license_ids: set[int]) -> dict[int, LicenseFacts]:
    if not license_ids:
        return {}
    rows = session.scalars(
        select(License)
        .where(License.id.in_(license_ids))
        .options(
            selectinload(License.product),
            selectinload(License.customer)
            .selectinload(Customer.contracts)
            .selectinload(Contract.product),
        )
    )
    return {lic.id: license_facts(lic) for lic in rows}


def _applied(
    session: Session,
    product_ids: set[int],
    since: datetime,
    history: Mapping[int, Mapping[int, ReleaseFacts]],
) -> dict[tuple[int, str], list[AppliedFacts]]:
    """Successful applies since ``since``: the first report per installation, release and
    starting version (an aggregate, so an agent that reports twice is counted once)."""
    versions = {rid: facts.version for by_id in history.values() for rid, facts in by_id.items()}
    rows = session.execute(
        select(
            ApplyReport.license_id,
            ApplyReport.installation_uid,
            ApplyReport.release_id,
            ApplyReport.from_version,
            func.min(ApplyReport.at),
        )
        .join(Release, Release.id == ApplyReport.release_id)
        .where(
            Release.product_id.in_(product_ids),
            ApplyReport.outcome == ApplyOutcome.SUCCESS,
            ApplyReport.at >= since,
        )
        .group_by(
            ApplyReport.license_id,
            ApplyReport.installation_uid,
            ApplyReport.release_id,
            ApplyReport.from_version,
        )
    )
    applied: dict[tuple[int, str], list[AppliedFacts]] = defaultdict(list)
    for license_id, uid, release_id, from_version, at in rows:
        version = versions.get(release_id)
        if version is not None:
            applied[(license_id, uid)].append(
                AppliedFacts(version, _version(from_version) if from_version else None, at)
            )
    return applied


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
