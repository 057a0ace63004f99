"""What the customer portal shows for one license: maintenance, the releases it may download,
what is new since the versions its installations run, and what renewal would bring.

The same rules as the check decide it (:func:`server.domain.entitlements.decide` over the
product's catalogue): a release is listed when the check could offer it, and each download is a
link (:mod:`server.domain.download_links`) that is decided again when it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import entitlements as ent
from server.domain import offers
from server.domain.catalog import Catalog, CatalogCache
from server.domain.coverage import MaintenanceStatus, maintenance_status
from server.domain.download_links import DownloadGrant, make_token
from server.domain.facts import LicenseFacts, ReleaseFacts
from server.domain.models import Installation, License, Release
from server.domain.renewal_links import renewal_link
from server.domain.row_facts import license_facts
from server.domain.standing import PortalStatus, portal_status
from server.domain.vocabulary import ANY_PLATFORM, DEFAULT_CHANNEL, Maintenance

LISTED = 20  # the newest entitled releases the portal lists


@dataclass(frozen=True)
class PortalDownload:
    """One file of a listed release: what the customer needs to pick it and check it."""

    platform: str
    token: str  # a download link's token, bound to the license (:mod:`.download_links`)
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class LicenseOverview:
    """One license as its customer sees it in the portal."""

    status: MaintenanceStatus
    portal: PortalStatus  # how the page words it (:mod:`server.domain.standing`)
    renewal: offers.RenewalSummary | None  # None while maintenance is simply active
    renewal_url: str
    releases: list[ReleaseFacts]  # entitled, newest first, at most LISTED
    downloads: dict[int, list[PortalDownload]]  # release id → its files, by platform
    notes: dict[int, str]  # release id → Markdown notes
    installed: list[Version]  # what the license's installations last reported, oldest first
    platforms: list[str]  # for an offline bundle

    @property
    def oldest(self) -> Version | None:
        """The oldest version an installation of this license runs, if any reported one."""
        return self.installed[0] if self.installed else None

    @property
    def newer(self) -> list[ReleaseFacts]:
        """Listed releases newer than the oldest installed version (what is new since)."""
        oldest = self.oldest
        return [r for r in self.releases if oldest is not None and r.version > oldest]


def license_overview(
    session: Session,
    catalogs: CatalogCache,
    lic: License,
    *,
    now: datetime,
    renewal_url: str,
    secret_key: str,
) -> LicenseOverview:
    """What the portal shows for ``lic`` at ``now``; download tokens are signed with
    ``secret_key``."""
    catalog = catalogs.for_license(session, lic, renewal_url)
    facts = license_facts(lic)
    status = maintenance_status(facts, catalog.policy, now)
    everything = catalog.index.newest_first
    entitled = [
        r
        for r in everything
        if ent.decide(facts, catalog.policy, r, now, releases=everything, status=status).offerable
    ][:LISTED]
    listed = {r.id for r in entitled}
    downloads: dict[int, list[PortalDownload]] = {}
    for (release_id, platform), artifact in sorted(catalog.artifacts.items()):
        if release_id in listed:
            token = make_token(secret_key, DownloadGrant(lic.id, artifact.artifact_id))
            downloads.setdefault(release_id, []).append(
                PortalDownload(platform, token, artifact.size, artifact.sha256)
            )
    notes = dict(
        session.execute(select(Release.id, Release.notes).where(Release.id.in_(listed))).all()
    )
    newest = entitled[0].version if entitled else Version("0")
    renewal = renewal_of(facts, catalog, status, newest, now)
    installed = installed_versions(session, lic)
    wording = portal_status(
        lic.status,
        status,
        catalog.policy,
        renewal=renewal,
        installed=installed,
        covered_newer=bool(installed) and any(r.version > installed[0] for r in entitled),
        index=catalog.index,
        way_out=entitled[0].version if entitled else None,
    )
    return LicenseOverview(
        status=status,
        portal=wording,
        renewal=renewal,
        renewal_url=renewal_link(
            catalog.policy.renewal_url,
            customer=lic.customer.slug,
            license_id=lic.id,
            product=lic.product.slug,
            ends_on=status.maintenance_ends_on,
        ),
        releases=entitled,
        downloads=downloads,
        notes=notes,
        installed=installed,
        platforms=sorted({p for r in entitled for p in r.platforms if p != ANY_PLATFORM})
        or [ANY_PLATFORM],
    )


def installed_versions(session: Session, lic: License) -> list[Version]:
    """The versions this license's installations last reported, oldest first."""
    found = session.scalars(
        select(Installation.version).where(Installation.license_id == lic.id).distinct()
    )
    versions = set()
    for text in found:
        try:
            versions.add(Version(text))
        except InvalidVersion:
            continue  # an agent's odd report is not the customer's problem here
    return sorted(versions)


def renewal_of(
    facts: LicenseFacts,
    catalog: Catalog,
    status: MaintenanceStatus,
    newest: Version,
    now: datetime,
) -> offers.RenewalSummary | None:
    """What renewal would bring beyond ``newest`` (the newest release the customer has), on the
    platform where it brings the most; None while maintenance is active and not ending."""
    if status.status not in {
        Maintenance.EXPIRING,
        Maintenance.GRACE,
        Maintenance.LAPSED,
        Maintenance.NONE,
    }:
        return None
    platforms = sorted({p for r in catalog.index.newest_first for p in r.platforms})
    summaries = [
        offers.renewal_summary(
            facts,
            catalog.policy,
            catalog.index,
            installed_version=newest,
            platform=platform,
            channel=DEFAULT_CHANNEL,
            now=now,
            status=status,
        )
        for platform in platforms
    ]
    found = [s for s in summaries if s is not None]
    return max(found, key=lambda s: s.updates + s.security + s.versions, default=None)


def bundle_filename(lic: License, platform: str, now: datetime) -> str:
    """The name an offline bundle downloads as."""
    return f"{lic.product.slug}-{lic.customer.slug}-{now:%Y%m%d}-{platform}.vgb"
