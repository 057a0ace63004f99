"""Generating delta patches for a release, after it is published.

For each artifact of the release, patches are made from the same platform's artifacts of the
previous ``count`` releases (by version). A patch larger than ``max_ratio`` of the full artifact
is not kept. The result is described in a signed ``patches`` document (release role) stored on
the release; the release manifest itself never changes. ``artifact_sha256`` (the manifest's hash
of the artifact whose content a patch rebuilds) binds each entry to the signed manifest::

    {"type": "patches", "product", "version",
     "artifacts": {"<platform>": {"artifact_sha256", "content_sha256", "content_size",
                                  "patches": {"<from version>": {"sha256", "size",
                                                                 "from_content_sha256"}}}}}
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.domain import delta
from server.domain.models import Artifact, Patch, Release
from server.domain.trust import Signer, sign_document
from server.storage.base import ArtifactStore

log = logging.getLogger(__name__)

DEFAULT_COUNT = 3
MAX_RATIO = 0.8


def _content(store: ArtifactStore, artifact: Artifact, work: Path) -> delta.Content:
    path = work / f"{artifact.sha256}.content"
    with store.open(artifact.sha256) as handle:
        content = delta.uncompressed(handle, path)
    artifact.content_sha256, artifact.content_size = content.sha256, content.size
    return content


def generate_patches(
    session: Session,
    store: ArtifactStore,
    signer: Signer,
    release: Release,
    *,
    count: int = DEFAULT_COUNT,
    max_ratio: float = MAX_RATIO,
) -> int:
    """Make the missing patches to ``release`` and sign its patches document; returns how many."""
    older = sorted(
        (
            r
            for r in session.scalars(
                select(Release)
                .where(Release.product_id == release.product_id, Release.published_at.is_not(None))
                .options(selectinload(Release.artifacts))
            )
            if Version(r.version) < Version(release.version)
        ),
        key=lambda r: Version(r.version),
        reverse=True,
    )[:count]
    made = 0
    with tempfile.TemporaryDirectory(prefix="vigor-patch-") as tmp:
        work = Path(tmp)
        for artifact in release.artifacts:
            target = _content(store, artifact, work)
            have = {
                p.from_artifact_id
                for p in session.scalars(select(Patch).where(Patch.artifact_id == artifact.id))
            }
            for old_release in older:
                source = next(
                    (a for a in old_release.artifacts if a.platform == artifact.platform), None
                )
                if source is None or source.id in have:
                    continue
                old = _content(store, source, work)
                patch_path = work / f"{source.id}-{artifact.id}.delta"
                size = delta.make_delta(old.path, target.path, patch_path)
                if size > artifact.size * max_ratio:
                    continue  # not worth it: the full artifact is nearly as small
                with patch_path.open("rb") as handle:
                    blob = store.put_stream(handle)
                session.add(
                    Patch(
                        artifact_id=artifact.id,
                        from_artifact_id=source.id,
                        sha256=blob.sha256,
                        size=blob.size,
                    )
                )
                made += 1
        session.flush()
        release.product.catalog_changed()  # the product row first: see Product.catalog_changed
        release.patch_manifest = json.dumps(
            sign_document(patch_document(session, release), [signer])
        )
        session.commit()
    return made


def patch_document(session: Session, release: Release) -> dict[str, object]:
    artifacts: dict[str, object] = {}
    for artifact in release.artifacts:
        patches = {}
        for patch in session.scalars(
            select(Patch)
            .where(Patch.artifact_id == artifact.id)
            .options(selectinload(Patch.from_artifact))
        ):
            source = patch.from_artifact
            patches[source.release.version] = {
                "sha256": patch.sha256,
                "size": patch.size,
                "from_content_sha256": source.content_sha256,
            }
        artifacts[artifact.platform] = {
            "artifact_sha256": artifact.sha256,
            "content_sha256": artifact.content_sha256,
            "content_size": artifact.content_size,
            "patches": patches,
        }
    return {
        "type": "patches",
        "product": release.product.slug,
        "version": release.version,
        "artifacts": artifacts,
    }
