"""Generating delta patches for a release, after it is published.

For each artifact of the release, patches are made from the same platform's artifacts of the
releases that matter: the versions installations run (what their last check said, the most
common first, at most ``MAX_IN_USE``) and the previous ``count`` releases (by version). A patch
is made once per pair; when it is not made, a :class:`PatchSkip` says why — larger than
``max_ratio`` of the full artifact, slower than ``time_limit``, or an error (tried again by the
next run). The result is described in a signed ``patches`` document (release role) stored on the
release; the release manifest itself never changes. ``artifact_sha256`` (the manifest's hash of
the artifact whose content a patch rebuilds) binds each entry to the signed manifest::

    {"type": "patches", "product", "version",
     "artifacts": {"<platform>": {"artifact_sha256", "content_sha256", "content_size",
                                  "patches": {"<from version>": {"sha256", "size", "format",
                                                                 "from_content_sha256"}}}}}

``format`` is a :class:`PatchFormat`; agents that do not name it in their check are not offered
the patch (docs/protocol.md).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from server.domain import delta
from server.domain.models import Artifact, Installation, License, Patch, PatchSkip, Release
from server.domain.trust import Signer, sign_document
from server.domain.vocabulary import PatchFormat, PatchSkipReason
from server.storage.base import ArtifactStore, StorageError

log = logging.getLogger(__name__)

DEFAULT_COUNT = 1
MAX_IN_USE = 10  # versions installations run that get a patch, the most common first
MAX_RATIO = 0.5  # a patch above half the full artifact is not worth it
TIME_LIMIT = 120.0  # seconds for one patch


def _content(store: ArtifactStore, artifact: Artifact, work: Path) -> delta.Content:
    path = work / f"{artifact.sha256}.content"
    if path.exists() and artifact.content_sha256 is not None:
        return delta.Content(path, path.stat().st_size, artifact.content_sha256)
    with store.open(artifact.sha256) as handle:
        content = delta.uncompressed(handle, path)
    artifact.content_sha256, artifact.content_size = content.sha256, content.size
    return content


def _published(session: Session, release: Release) -> list[Release]:
    """The product's published releases older than ``release``, newest first."""

    def version(r: Release) -> Version:
        return Version(r.version)

    return sorted(
        (
            r
            for r in session.scalars(
                select(Release)
                .where(Release.product_id == release.product_id, Release.published_at.is_not(None))
                .options(selectinload(Release.artifacts))
            )
            if version(r) < version(release)
        ),
        key=version,
        reverse=True,
    )


def versions_in_use(session: Session, product_id: int) -> list[str]:
    """The versions installations of the product run, the most common first."""
    rows = session.execute(
        select(Installation.version, func.count())
        .join(License, License.id == Installation.license_id)
        .where(License.product_id == product_id)
        .group_by(Installation.version)
        .order_by(func.count().desc(), Installation.version)
    )
    return [version for version, _ in rows]


def predecessors(session: Session, release: Release, count: int = DEFAULT_COUNT) -> list[Release]:
    """The releases patches to ``release`` start from: the previous ``count`` and those that
    installations run (at most MAX_IN_USE of them), newest first."""
    older = _published(session, release)
    by_version: dict[Version, Release] = {Version(r.version): r for r in older}
    wanted = {Version(r.version) for r in older[:count]}
    in_use = 0
    for text in versions_in_use(session, release.product_id):
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version in by_version and version not in wanted and in_use < MAX_IN_USE:
            wanted.add(version)
            in_use += 1
    return [r for r in older if Version(r.version) in wanted]


@dataclass
class _Run:
    session: Session
    store: ArtifactStore
    work: Path
    max_ratio: float
    time_limit: float
    made: int = 0

    def skip(
        self, artifact: Artifact, source: Artifact, reason: PatchSkipReason, detail: str
    ) -> None:
        self.session.add(
            PatchSkip(
                artifact_id=artifact.id,
                from_artifact_id=source.id,
                reason=reason,
                detail=detail[:2000],
            )
        )
        log.info("no patch %s -> %s: %s (%s)", source.id, artifact.id, reason, detail)

    def pair(self, artifact: Artifact, target: delta.Content, source: Artifact) -> None:
        """Make the patch from ``source`` to ``artifact``, or record why not."""
        patch_path = self.work / f"{source.id}-{artifact.id}.delta"
        try:
            old = _content(self.store, source, self.work)
            size = delta.make_delta(old.path, target.path, patch_path, self.time_limit)
            if size > artifact.size * self.max_ratio:
                self.skip(
                    artifact,
                    source,
                    PatchSkipReason.NOT_WORTH_IT,
                    f"{size} bytes, {size / max(artifact.size, 1):.0%} of the full "
                    f"{artifact.size} (limit {self.max_ratio:.0%})",
                )
                return
            with patch_path.open("rb") as handle:
                blob = self.store.put_stream(handle)
        except delta.DeltaTooSlowError:
            self.skip(artifact, source, PatchSkipReason.TOO_SLOW, f"over {self.time_limit:g} s")
            return
        except (StorageError, OSError, EOFError, ValueError, delta.ZstdError) as exc:
            self.skip(artifact, source, PatchSkipReason.ERROR, str(exc) or type(exc).__name__)
            return
        finally:
            patch_path.unlink(missing_ok=True)
        self.session.add(
            Patch(
                artifact_id=artifact.id,
                from_artifact_id=source.id,
                sha256=blob.sha256,
                size=blob.size,
                format=PatchFormat.ZSTD1,
            )
        )
        self.made += 1


def _settled(session: Session, artifact: Artifact) -> set[int]:
    """The artifacts a patch to ``artifact`` was made from, or skipped for good (errors are
    tried again: their record goes)."""
    session.execute(
        delete(PatchSkip).where(
            PatchSkip.artifact_id == artifact.id, PatchSkip.reason == PatchSkipReason.ERROR
        )
    )
    made = session.scalars(select(Patch.from_artifact_id).where(Patch.artifact_id == artifact.id))
    skipped = session.scalars(
        select(PatchSkip.from_artifact_id).where(PatchSkip.artifact_id == artifact.id)
    )
    return {*made, *skipped}


def generate_patches(
    session: Session,
    store: ArtifactStore,
    signer: Signer,
    release: Release,
    *,
    count: int = DEFAULT_COUNT,
    max_ratio: float = MAX_RATIO,
    time_limit: float = TIME_LIMIT,
) -> int:
    """Make the missing patches to ``release`` and sign its patches document; returns how many.

    A pair that fails is recorded (:class:`PatchSkip`), never raised: the others are still made.
    """
    older = predecessors(session, release, count)
    with tempfile.TemporaryDirectory(prefix="vigor-patch-") as tmp:
        run = _Run(session, store, Path(tmp), max_ratio, time_limit)
        for artifact in release.artifacts:
            done = _settled(session, artifact)
            sources = [
                source
                for old_release in older
                for source in old_release.artifacts
                if source.platform == artifact.platform and source.id not in done
            ]
            if not sources:
                continue
            try:
                target = _content(store, artifact, run.work)
            except (StorageError, OSError, EOFError) as exc:
                for source in sources:
                    run.skip(
                        artifact, source, PatchSkipReason.ERROR, f"this release's artifact: {exc}"
                    )
                continue
            for source in sources:
                run.pair(artifact, target, source)
        session.flush()
        release.product.catalog_changed()  # the product row first: see Product.catalog_changed
        release.patch_manifest = json.dumps(
            sign_document(patch_document(session, release), [signer])
        )
        session.commit()
    return run.made


@dataclass(frozen=True)
class PatchLine:
    """One patch to a release, made or skipped, as the admin page and the CLI show it."""

    platform: str
    from_version: str
    size: int | None  # made: the patch's size
    full_size: int
    format: str | None
    skipped: PatchSkipReason | None
    detail: str

    def describe(self) -> str:
        """``92 KB (1.0% of 9.5 MB, zstd1)``, or ``skipped (not-worth-it): ...``."""
        if self.size is None:
            return f"skipped ({self.skipped}): {self.detail}"
        share = self.size / max(self.full_size, 1)
        return f"{_size(self.size)} ({share:.1%} of {_size(self.full_size)}, {self.format})"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1000**2:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1000**2:.1f} MB"


def patch_lines(session: Session, release: Release) -> list[PatchLine]:
    """Every patch to ``release`` and every recorded skip, by platform then newest source."""
    lines: list[PatchLine] = []
    for artifact in release.artifacts:
        for patch in session.scalars(
            select(Patch)
            .where(Patch.artifact_id == artifact.id)
            .options(selectinload(Patch.from_artifact))
        ):
            lines.append(
                PatchLine(
                    artifact.platform,
                    patch.from_artifact.release.version,
                    patch.size,
                    artifact.size,
                    patch.format,
                    None,
                    "",
                )
            )
        for skip in session.scalars(
            select(PatchSkip)
            .where(PatchSkip.artifact_id == artifact.id)
            .options(selectinload(PatchSkip.from_artifact))
        ):
            lines.append(
                PatchLine(
                    artifact.platform,
                    skip.from_artifact.release.version,
                    None,
                    artifact.size,
                    None,
                    skip.reason,
                    skip.detail,
                )
            )
    return sorted(
        lines, key=lambda line: (line.platform, _sortable(line.from_version)), reverse=False
    )


def _sortable(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        return Version("0")


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
                "format": str(patch.format),
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
