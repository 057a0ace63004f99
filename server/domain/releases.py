"""Releases once published: finding and listing them, yank and staged rollout, the JSON an API
or CLI shows, and sweeping blobs nothing references. Publishing itself is
:mod:`server.domain.publishing`."""

from __future__ import annotations

import json
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.domain import audit, products, staged_uploads
from server.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from server.domain.models import (
    Artifact,
    Patch,
    Product,
    Release,
    utcnow,
)
from server.storage.base import ArtifactStore, Sweep

MAX_VERSION_LENGTH = 64


def parse_version(text: str, field_name: str = "version") -> Version:
    """``text`` as a PEP 440 version.

    Raises:
        InvalidInputError: not a version, or longer than :data:`MAX_VERSION_LENGTH` (packaging
            would spend its time on, or refuse with a ``ValueError``, thousands of digits).
    """
    try:
        if len(text) > MAX_VERSION_LENGTH:
            raise InvalidVersion(text)
        return Version(text)
    except (InvalidVersion, TypeError):
        raise InvalidInputError(
            field_name, f"{str(text)[:80]!r} is not a valid version (PEP 440)"
        ) from None


def default_line(version: Version) -> str:
    return f"{version.major}.x"


def find_release(session: Session, product: str, version: str) -> Release:
    wanted = parse_version(version)
    prod = products.get_product(session, product)
    for release in session.scalars(
        select(Release)
        .where(Release.product_id == prod.id)
        .options(selectinload(Release.artifacts), selectinload(Release.customers))
    ):
        if parse_version(release.version) == wanted:
            return release
    raise NotFoundError(f"{product} has no release {version}", product=product, version=version)


def list_releases(session: Session, product: str) -> list[Release]:
    prod = products.get_product(session, product)
    releases = list(
        session.scalars(
            select(Release)
            .where(Release.product_id == prod.id)
            .options(selectinload(Release.artifacts), selectinload(Release.line))
        )
    )
    return sorted(releases, key=lambda r: parse_version(r.version))


def listing(session: Session) -> dict[str, list[Release]]:
    """Every product's releases, newest version first, by product slug (a fixed number of
    queries)."""
    found: dict[str, list[Release]] = {
        slug: [] for slug in session.scalars(select(Product.slug).order_by(Product.slug))
    }
    for release in session.scalars(
        select(Release).options(
            selectinload(Release.artifacts),
            selectinload(Release.line),
            selectinload(Release.product),
        )
    ):
        found[release.product.slug].append(release)
    for releases in found.values():
        releases.sort(key=lambda r: parse_version(r.version), reverse=True)
    return found


def referenced_digests(session: Session) -> set[str]:
    """Every blob something points at: artifacts, delta patches and staged uploads."""
    return (
        set(session.scalars(select(Artifact.sha256).distinct()))
        | set(session.scalars(select(Patch.sha256).distinct()))
        | staged_uploads.referenced_digests(session)
    )


def garbage_collect(session: Session, store: ArtifactStore, *, dry_run: bool = False) -> list[str]:
    """Delete blobs no artifact references; returns their digests."""
    keep = referenced_digests(session)
    orphans = [d for d in store.digests() if d not in keep]
    if not dry_run:
        for digest in orphans:
            store.delete(digest)
    return orphans


def sweep_incomplete_uploads(
    store: ArtifactStore, older_than_seconds: float, *, dry_run: bool = False
) -> Sweep:
    """Remove what unfinished uploads left in the store (temporary files and objects, open
    multipart uploads) once older than ``older_than_seconds``."""
    return store.sweep_incomplete(older_than_seconds, dry_run=dry_run)


def yank(
    session: Session,
    release: Release,
    *,
    reason: str,
    recommended_version: str | None,
    actor: str,
) -> Release:
    """Stop offering a release; installations on it are told why and what to move to."""
    if release.is_draft:
        raise ConflictError("a draft cannot be yanked; it was never offered")
    if not reason.strip():
        raise InvalidInputError("reason", "say why the release is yanked")
    if recommended_version is not None:
        recommended = find_release(session, release.product.slug, recommended_version)
        if recommended.id == release.id or recommended.is_yanked:
            raise InvalidInputError(
                "recommended_version", "must be another release that is not yanked"
            )
        recommended_version = recommended.version
    release.product.catalog_changed()  # the product row first: see Product.catalog_changed
    release.yanked_at = utcnow()
    release.yank_reason = reason.strip()
    release.recommended_version = recommended_version
    audit.record(
        session,
        actor,
        "release.yank",
        f"{release.product.slug} {release.version}",
        reason=release.yank_reason,
        recommended_version=recommended_version,
    )
    session.commit()
    return release


def set_rollout(session: Session, release: Release, percent: int, *, actor: str) -> Release:
    """Set the staged rollout share (0 halts it; critical security revisions bypass rollout)."""
    if not 0 <= percent <= 100:
        raise InvalidInputError("percent", "must be a whole number from 0 to 100")
    previous = release.rollout_percent
    release.product.catalog_changed()  # the product row first: see Product.catalog_changed
    release.rollout_percent = percent
    audit.record(
        session,
        actor,
        "rollout.halt" if percent == 0 else "rollout.set",
        f"{release.product.slug} {release.version}",
        percent=percent,
        previous_percent=previous,
    )
    session.commit()
    return release


def release_json(release: Release) -> dict[str, Any]:
    """A release as the admin API and ``vigor release list --json`` show it."""
    return {
        "product": release.product.slug,
        "version": release.version,
        "kind": release.kind,
        "severity": release.severity,
        "channel": release.channel,
        "line": release.line.name,
        "status": release.state,
        "published_at": release.published_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if release.published_at
        else None,
        "min_from": release.min_from,
        "rollout_percent": release.rollout_percent,
        "artifacts": [
            {"platform": a.platform, "filename": a.filename, "size": a.size, "sha256": a.sha256}
            for a in release.artifacts
        ],
        "manifest": json.loads(release.manifest) if release.manifest else None,
    }
