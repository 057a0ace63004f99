"""Publishing releases: validate, store the bytes, sign the manifest, make it visible at once.

The workflow, in the order that keeps a failure harmless:

1. Validate everything that can be validated without the bytes (product, version, kind,
   severity, channel, ``min_from``, platforms, customers). A refusal here reads no file.
2. Stream each artifact into the content-addressed store, hashing as it goes. Empty files and
   files over the size limit are refused.
3. Build and sign the release manifest (unless the release is a draft).
4. One database transaction inserts the release and its artifacts, and (unless it is a draft)
   the background job that makes its delta patches (``server/domain/jobs.py``).

A failure at 2, 3 or 4 rolls the transaction back and deletes the blobs that this publish stored
and no other release references; ``vigor gc`` sweeps whatever a crash left behind.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit, emails, jobs, staged_uploads
from server.domain.errors import (
    ConflictError,
    InvalidInputError,
    SigningError,
    StorageUnavailableError,
)
from server.domain.models import (
    Artifact,
    Customer,
    Patch,
    Product,
    ProductLine,
    Release,
    utcnow,
)
from server.domain.releases import default_line, parse_version
from server.domain.trust import Signer, TrustError, iso, sha256_hex, sign_document
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    PLATFORM_RE,
    SLUG_RE,
    JobKind,
    LineStatus,
    ReleaseKind,
    Severity,
    parse,
)
from server.storage.base import (
    ArtifactStore,
    BlobNotFoundError,
    BlobWriter,
    SizeLimitError,
    StorageError,
    StoredBlob,
)

FILENAME_RE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class ReleaseSpec:
    """What a publisher asks for; validated by :func:`validate_spec`."""

    product: str
    version: str
    kind: str
    severity: str | None = None
    channel: str = DEFAULT_CHANNEL
    notes: str = ""
    min_from: str | None = None
    line: str | None = None
    published_at: datetime | None = None  # to import a release history from another system
    draft: bool = False
    customers: tuple[str, ...] = ()
    platforms: tuple[str, ...] = field(default=())


class IncomingArtifact(Protocol):
    """One platform's file on its way into the store."""

    platform: str
    filename: str

    def store_into(self, store: ArtifactStore, max_size: int) -> StoredBlob: ...

    def discard(self) -> None: ...


@dataclass
class PathArtifact:
    """A file on disk (the CLI's ``PLATFORM=PATH``)."""

    platform: str
    path: Path
    filename: str = ""

    def __post_init__(self) -> None:
        self.filename = self.filename or self.path.name

    def store_into(self, store: ArtifactStore, max_size: int) -> StoredBlob:
        from server.storage.base import copy_into

        with self.path.open("rb") as handle:
            return copy_into(store, handle, max_size=max_size)

    def discard(self) -> None:
        """Nothing to discard: the file belongs to the caller."""


@dataclass
class StreamedArtifact:
    """Bytes already streamed into a store writer while the request was parsed (the API)."""

    platform: str
    filename: str
    writer: BlobWriter

    def store_into(self, store: ArtifactStore, max_size: int) -> StoredBlob:
        return self.writer.commit()

    def discard(self) -> None:
        self.writer.abort()


@dataclass
class StagedArtifact:
    """An upload staged earlier (``server/domain/staged_uploads.py``): its bytes are in the store
    already, under their digest, so nothing is read or copied; storing it takes the upload."""

    platform: str
    upload_id: object
    token_id: int
    session: Session
    filename: str = ""

    def store_into(self, store: ArtifactStore, max_size: int) -> StoredBlob:
        # The release being built is not in the session yet: no flush before it is whole.
        with self.session.no_autoflush:
            upload = staged_uploads.take(self.session, self.token_id, self.upload_id, self.platform)
        self.filename = upload.filename
        if upload.size > max_size:  # the limit was lowered since
            raise SizeLimitError(f"more than {max_size} bytes")
        try:
            stored = store.size(upload.sha256)
        except BlobNotFoundError:
            stored = None
        if stored != upload.size:  # removed (or never kept) behind the database's back
            raise InvalidInputError(
                f"artifacts.{self.platform}",
                f"the bytes of upload {upload.public_id} are no longer stored; upload again",
            )
        return StoredBlob(upload.sha256, upload.size)

    def discard(self) -> None:
        """Nothing to discard: a publish that fails gives the upload back (its rollback)."""


@dataclass(frozen=True)
class ValidatedSpec:
    spec: ReleaseSpec
    product: Product
    version: Version
    kind: ReleaseKind
    severity: Severity | None
    line: str
    customers: list[Customer]


def validate_spec(session: Session, spec: ReleaseSpec) -> ValidatedSpec:
    """Everything about a release that can be refused before any byte is read."""
    if not spec.product:
        raise InvalidInputError("product", "is required")
    product = session.scalar(select(Product).where(Product.slug == spec.product))
    if product is None:
        raise InvalidInputError("product", f"unknown product {spec.product!r}")
    version = parse_version(spec.version)
    kind = parse(ReleaseKind, "kind", spec.kind)
    severity = None if spec.severity is None else parse(Severity, "severity", spec.severity)
    if kind == ReleaseKind.SECURITY and severity is None:
        raise InvalidInputError("severity", "a security revision needs a severity")
    if not SLUG_RE.match(spec.channel or ""):
        raise InvalidInputError("channel", f"{spec.channel!r} is not a valid channel name")
    existing = {
        parse_version(v): v
        for v in session.scalars(select(Release.version).where(Release.product_id == product.id))
    }
    if version in existing:
        raise ConflictError(f"{product.slug} {existing[version]} already exists", field="version")
    if spec.min_from is not None:
        min_from = parse_version(spec.min_from, "min_from")
        if min_from not in existing:
            raise InvalidInputError("min_from", f"{product.slug} has no release {spec.min_from}")
        if min_from >= version:
            raise InvalidInputError("min_from", "must be older than the release itself")
    if not spec.platforms:
        raise InvalidInputError("files", "at least one PLATFORM=FILE is required")
    seen: set[str] = set()
    for platform in spec.platforms:
        if not PLATFORM_RE.match(platform):
            raise InvalidInputError(
                "platform",
                f"unknown platform {platform!r} (os-arch, e.g. linux-x86_64, or 'any')",
            )
        if platform in seen:
            raise InvalidInputError("platform", f"{platform} given twice")
        seen.add(platform)
    customers = []
    for slug in spec.customers:
        customer = session.scalar(select(Customer).where(Customer.slug == slug))
        if customer is None:
            raise InvalidInputError("customers", f"unknown customer {slug!r}")
        customers.append(customer)
    if spec.published_at is not None and spec.published_at > utcnow():
        raise InvalidInputError("published_at", "cannot be in the future")
    line = spec.line or default_line(version)
    return ValidatedSpec(spec, product, version, kind, severity, line, customers)


def manifest_for(release: Release) -> dict[str, Any]:
    """The ``signed`` part of a release manifest (docs/protocol.md)."""
    assert release.published_at is not None
    return {
        "type": "release",
        "product": release.product.slug,
        "version": release.version,
        "kind": release.kind,
        "severity": release.severity,
        "channel": release.channel,
        "line": release.line.name,
        "published_at": iso(release.published_at),
        "min_from": release.min_from,
        "notes_sha256": sha256_hex(release.notes.encode()),
        "customers": sorted(c.slug for c in release.customers),
        "artifacts": {
            a.platform: {"filename": a.filename, "size": a.size, "sha256": a.sha256}
            for a in release.artifacts
        },
    }


def sign_manifest(release: Release, signer: Signer) -> None:
    try:
        document = sign_document(manifest_for(release), [signer])
    except (TrustError, OSError, ValueError) as exc:
        raise SigningError(f"could not sign the release manifest: {exc}") from exc
    release.manifest = json.dumps(document, sort_keys=True)
    release.manifest_keyid = signer.keyid


def _line(session: Session, product: Product, name: str) -> ProductLine:
    line = session.scalar(
        select(ProductLine).where(ProductLine.product_id == product.id, ProductLine.name == name)
    )
    if line is None:
        line = ProductLine(product=product, name=name, status=LineStatus.SUPPORTED)
        session.add(line)
    return line


def safe_filename(name: str, fallback: str) -> str:
    cleaned = FILENAME_RE.sub("_", Path(name).name).lstrip(".")
    return cleaned[:200] or fallback


def publish(
    session: Session,
    store: ArtifactStore,
    signer: Signer | None,
    spec: ReleaseSpec,
    incoming: Sequence[IncomingArtifact],
    *,
    actor: str,
    max_size: int,
) -> Release:
    """Publish (or save as a draft) a release atomically; see the module docstring.

    Raises:
        InvalidInputError, ConflictError: the request is refused; nothing is stored.
        StorageUnavailableError, SigningError: a step failed; nothing is visible.
    """
    stored: list[StoredBlob] = []
    try:
        valid = validate_spec(session, spec)
        line = _line(session, valid.product, valid.line)
        release = Release(
            product=valid.product,
            line=line,
            version=str(valid.version),
            kind=valid.kind,
            severity=valid.severity,
            channel=spec.channel,
            notes=spec.notes,
            min_from=str(parse_version(spec.min_from)) if spec.min_from else None,
            created_by=actor,
        )
        release.customers = valid.customers
        for item in incoming:
            blob = _store_one(store, item, max_size)
            stored.append(blob)
            fallback = f"{valid.product.slug}-{valid.version}-{item.platform}"
            release.artifacts.append(
                Artifact(
                    platform=item.platform,
                    filename=safe_filename(item.filename, fallback),
                    size=blob.size,
                    sha256=blob.sha256,
                )
            )
        session.add(release)
        if not spec.draft:
            _make_public(release, signer, spec.published_at or utcnow())
        audit.record(
            session,
            actor,
            "release.draft" if spec.draft else "release.publish",
            f"{valid.product.slug} {release.version}",
            kind=release.kind,
            severity=release.severity,
            channel=release.channel,
            platforms=[a.platform for a in release.artifacts],
        )
        if not spec.draft:
            ask_for_patches(session, release)
            emails.ask_for_security_notices(session, release)
        session.commit()
    except BaseException:
        session.rollback()
        for item in incoming:
            item.discard()
        _forget_unreferenced(session, store, stored)
        raise
    return release


def publish_uploads(
    session: Session,
    store: ArtifactStore,
    signer: Signer | None,
    spec: ReleaseSpec,
    uploads: dict[str, object],
    *,
    token_id: int,
    actor: str,
    max_size: int,
) -> Release:
    """:func:`publish` a release whose artifacts were staged by ``token_id``'s uploads
    (``{platform: upload id}``); each upload is used once. Raises what ``publish`` raises, and
    ``InvalidInputError`` naming ``artifacts.<platform>`` for an upload that cannot be used."""
    incoming = [
        StagedArtifact(platform=platform, upload_id=upload_id, token_id=token_id, session=session)
        for platform, upload_id in uploads.items()
    ]
    return publish(session, store, signer, spec, incoming, actor=actor, max_size=max_size)


def _store_one(store: ArtifactStore, item: IncomingArtifact, max_size: int) -> StoredBlob:
    try:
        blob = item.store_into(store, max_size)
    except SizeLimitError:
        raise InvalidInputError(
            "files", f"the {item.platform} file is larger than the limit of {max_size} bytes"
        ) from None
    except StorageError as exc:
        raise StorageUnavailableError(f"artifact store failed: {exc}") from exc
    if blob.size == 0:
        _forget_unreferenced_blob(store, blob)  # nothing references an empty blob we refuse
        raise InvalidInputError("files", f"the {item.platform} file is empty")
    return blob


def _make_public(release: Release, signer: Signer | None, published_at: datetime) -> None:
    if signer is None:
        raise SigningError("no release signing key is available")
    release.product.catalog_changed()  # the product row first: see Product.catalog_changed
    release.published_at = published_at
    sign_manifest(release, signer)


def _forget_unreferenced_blob(store: ArtifactStore, blob: StoredBlob) -> None:
    with contextlib.suppress(StorageError):  # `vigor gc` sweeps what cannot be deleted now
        store.delete(blob.sha256)


def _forget_unreferenced(session: Session, store: ArtifactStore, blobs: list[StoredBlob]) -> None:
    """Delete the blobs this publish stored that nothing in the database references (a staged
    upload's blob stays: the upload can be used again)."""
    for blob in blobs:
        referenced = (
            session.scalar(select(Artifact.id).where(Artifact.sha256 == blob.sha256).limit(1))
            or session.scalar(select(Patch.id).where(Patch.sha256 == blob.sha256).limit(1))
            or staged_uploads.is_referenced(session, blob.sha256)
        )
        if not referenced:
            _forget_unreferenced_blob(store, blob)


def publish_draft(session: Session, release: Release, signer: Signer | None, actor: str) -> Release:
    """Make a draft public: sign its manifest and stamp its publication time."""
    if not release.is_draft:
        raise ConflictError(f"{release.product.slug} {release.version} is already published")
    _make_public(release, signer, utcnow())
    audit.record(
        session,
        actor,
        "release.publish",
        f"{release.product.slug} {release.version}",
        kind=release.kind,
        severity=release.severity,
        channel=release.channel,
        platforms=[a.platform for a in release.artifacts],
    )
    ask_for_patches(session, release)
    emails.ask_for_security_notices(session, release)
    session.commit()
    return release


def ask_for_patches(session: Session, release: Release) -> None:
    """Queue the job that makes the delta patches to ``release``, in the publish's transaction:
    a publish that rolls back leaves no job, and a committed one always has its job."""
    session.flush()  # the release's id
    jobs.enqueue(
        session, JobKind.PATCHES, f"patches:release:{release.id}", {"release_id": release.id}
    )
