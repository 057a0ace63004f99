"""A product's catalogue: its published releases as facts, with their signed manifests, artifacts
and patches — what a check, a download, the portal and a bundle decide on.

Loading one reads every published release of the product, so each process keeps the newest in a
:class:`CatalogCache`, keyed by the product's ``catalog_revision`` (bumped in the same
transaction as any change to its releases or lines).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.domain import offers
from server.domain.errors import NotFoundError
from server.domain.facts import ProductPolicy
from server.domain.models import License, Patch, Product, Release
from server.domain.row_facts import product_policy, release_facts
from server.domain.trust import load_float_free


@dataclass(frozen=True)
class OfferedArtifact:
    artifact_id: int
    platform: str
    size: int
    sha256: str


@dataclass(frozen=True)
class OfferedPatch:
    patch_id: int
    artifact_id: int
    size: int
    sha256: str
    format: str = "vigor1"


@dataclass(frozen=True)
class Catalog:
    """A product's published releases as facts, with what a check needs to answer."""

    revision: int
    policy: ProductPolicy
    index: offers.ReleaseIndex
    manifests: Mapping[int, Any]  # release id -> signed manifest (parsed JSON)
    artifacts: Mapping[tuple[int, str], OfferedArtifact]  # (release id, platform)
    patch_documents: Mapping[int, Any] = field(default_factory=dict)  # release id -> signed doc
    patches: Mapping[tuple[int, str, str], OfferedPatch] = field(default_factory=dict)
    # (release id, platform, from version) -> patch


class CatalogCache:
    """Per-process cache of catalogues, invalidated by the product's ``catalog_revision``.

    Correct across processes: every check reads the product row, and any change to releases or
    lines bumps the revision in the same transaction.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, Catalog] = {}

    def get(
        self,
        session: Session | Callable[[], Session],
        product_id: int,
        revision: int,
        renewal_url: str,
    ) -> Catalog:
        """The catalogue of ``product_id`` at ``revision`` (read from the license's row).

        ``session`` may be a function that opens one: it is called only on a miss.
        """
        with self._lock:
            cached = self._entries.get(product_id)
        if cached is not None and cached.revision == revision:
            return cached
        if not isinstance(session, Session):
            session = session()
        product = session.get(Product, product_id)
        if product is None:
            raise NotFoundError(f"no product {product_id}")
        catalog = load_catalog(session, product, renewal_url)
        with self._lock:
            self._entries[product_id] = catalog
        return catalog

    def for_license(self, session: Session, lic: License, renewal_url: str) -> Catalog:
        """The catalogue of ``lic``'s product (read from the license's product row)."""
        return self.get(session, lic.product_id, lic.product.catalog_revision, renewal_url)


def load_catalog(session: Session, product: Product, renewal_url: str) -> Catalog:
    rows = list(
        session.scalars(
            select(Release)
            .where(Release.product_id == product.id, Release.published_at.is_not(None))
            .options(
                selectinload(Release.artifacts),
                selectinload(Release.customers),
                selectinload(Release.line),
            )
        )
    )
    rows = [r for r in rows if r.manifest]
    by_artifact = {a.id: (r, a) for r in rows for a in r.artifacts}
    patches: dict[tuple[int, str, str], OfferedPatch] = {}
    if by_artifact:
        for patch in session.scalars(select(Patch).where(Patch.artifact_id.in_(list(by_artifact)))):
            release, artifact = by_artifact[patch.artifact_id]
            source = by_artifact.get(patch.from_artifact_id)
            if source is not None:
                key = (release.id, artifact.platform, source[0].version)
                patches[key] = OfferedPatch(
                    patch.id, artifact.id, patch.size, patch.sha256, patch.format
                )
    return Catalog(
        revision=product.catalog_revision,
        policy=product_policy(product, renewal_url),
        index=offers.ReleaseIndex.of(release_facts(r) for r in rows),
        manifests={r.id: load_float_free(r.manifest or "{}") for r in rows},
        artifacts={
            (r.id, a.platform): OfferedArtifact(a.id, a.platform, a.size, a.sha256)
            for r in rows
            for a in r.artifacts
        },
        patch_documents={r.id: load_float_free(r.patch_manifest) for r in rows if r.patch_manifest},
        patches=patches,
    )


def artifact_for(catalog: Catalog, release_id: int, platform: str) -> OfferedArtifact | None:
    """The artifact of ``release_id`` for ``platform``, else its platform-independent one."""
    return catalog.artifacts.get((release_id, platform)) or catalog.artifacts.get(
        (release_id, "any")
    )
