"""A download link used: may the license it was handed to still have it, and what to serve.

A link (:mod:`server.domain.download_links`) names a license, an artifact and perhaps a delta
patch to it. Being signed and fresh is not enough. It is no bearer token: whoever presents it
must be that license (its key in ``Authorization: License``, or a portal session signed in to
it), so that a link shared or overheard does not download. And the entitlement is decided again
when the bytes are asked for, by the same rules as the check, so that a license suspended, or a release
taken back into draft, since the check stops the download. Every download served is recorded
(the dashboard counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.domain import entitlements as ent
from server.domain.catalog import CatalogCache
from server.domain.download_links import DownloadGrant
from server.domain.errors import (
    DownloadLicenseRequiredError,
    DownloadWrongLicenseError,
    NotEntitledError,
    NotFoundError,
)
from server.domain.models import Artifact, DownloadEvent, License, Patch, Release
from server.domain.row_facts import license_facts, release_facts
from server.domain.secrets import matches
from server.domain.vocabulary import LicenseStatus


@dataclass(frozen=True)
class LinkHolder:
    """Who presents a download link: an agent with its license key, or a portal session
    signed in to a license (its id, which the session checked)."""

    license_key: str | None = None
    session_license_id: int | None = None

    def check(self, lic: License) -> None:
        """Refuse anyone but ``lic``, the license the link was handed to.

        Raises:
            DownloadLicenseRequiredError: no license presented with the link.
            DownloadWrongLicenseError: another license presented it.
        """
        if self.session_license_id is not None:
            if self.session_license_id != lic.id:
                raise DownloadWrongLicenseError(
                    "this download link belongs to another license than the one signed in"
                )
            return
        if not self.license_key:
            raise DownloadLicenseRequiredError(
                "this download link must be presented with the license it was handed to "
                "(Authorization: License <key>)"
            )
        if not matches(self.license_key, lic.key_hash):
            raise DownloadWrongLicenseError(
                "this download link was handed to another license; check for updates with "
                "this license to get its own link"
            )


@dataclass(frozen=True)
class Download:
    """What to serve: the stored blob's SHA-256 and the file name the customer sees."""

    digest: str
    filename: str


def authorize_download(
    session: Session,
    catalogs: CatalogCache,
    grant: DownloadGrant,
    *,
    holder: LinkHolder,
    now: datetime,
    renewal_url: str,
    range_start: int = 0,
) -> Download:
    """Decide a download again and record it; the blob to serve.

    Args:
        holder: who presents the link; it must be the license the link names.
        range_start: the first byte asked for (a resumed download), as recorded.

    Raises:
        DownloadLicenseRequiredError, DownloadWrongLicenseError: ``holder`` is not the link's
            license.
        NotFoundError: the license, the artifact or the patch no longer exists.
        NotEntitledError: the license is not active, the release is a draft, or the
            entitlement rules refuse the release to this license now.
    """
    lic = session.get(License, grant.license_id, options=[selectinload(License.customer)])
    artifact = session.get(Artifact, grant.artifact_id)
    if lic is None or artifact is None:
        raise NotFoundError("this download no longer exists")
    holder.check(lic)
    release = session.scalar(
        select(Release)
        .where(Release.id == artifact.release_id)
        .options(
            selectinload(Release.customers),
            selectinload(Release.line),
            selectinload(Release.artifacts),
        )
    )
    assert release is not None  # an artifact's release is a foreign key, deleted with it
    if lic.status != LicenseStatus.ACTIVE or release.is_draft:
        raise NotEntitledError("this license may not download this release", license=lic)
    catalog = catalogs.get(
        session, release.product_id, release.product.catalog_revision, renewal_url
    )
    # The whole catalogue goes in: the security carve-out depends on the lines the customer owns.
    decision = ent.decide(
        license_facts(lic),
        catalog.policy,
        release_facts(release),
        now,
        releases=catalog.index.newest_first,
    )
    if not decision.entitled:
        raise NotEntitledError(
            "this license is not entitled to this release: " + "; ".join(decision.reasons),
            license=lic,
        )
    served = Download(artifact.sha256, artifact.filename)
    if grant.patch_id is not None:
        patch = session.get(Patch, grant.patch_id)
        if patch is None or patch.artifact_id != artifact.id:
            raise NotFoundError("this patch no longer exists")
        served = Download(patch.sha256, f"{artifact.filename}.delta")
    session.add(
        DownloadEvent(at=now, license_id=lic.id, artifact_id=artifact.id, range_start=range_start)
    )
    session.commit()
    return served
