"""Staged uploads: an artifact sent on its own, as the raw request body, before the release that
names it (``POST /api/v1/admin/uploads``, then a JSON ``POST /api/v1/admin/releases``).

This is how GitHub release assets, registry blobs or S3 take large files: a 1 GiB artifact is
streamed into the store as it arrives and never parsed as a multipart form. The bytes are stored
under their digest when the upload ends, exactly as a publish would store them (the same store
writer, hashed on the way); they are visible to no one until a release names them, since
downloads go through a release's artifacts. The row records who uploaded what; a publish takes
an upload once (``take``), in its own transaction, so a publish that fails leaves the upload
usable for the next try. ``vigor gc`` deletes the rows older than a day (``LIFETIME``), used or
not, and then the blobs nothing references any more.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from server.domain.errors import InvalidInputError
from server.domain.models import ApiToken, StagedUpload, utcnow
from server.storage.base import StoredBlob

LIFETIME = timedelta(hours=24)  # an upload not used by then is refused, and swept by `vigor gc`
MAX_FILENAME_LENGTH = 255
ID_RE = re.compile(r"\Aupl_[0-9a-f]{32}\Z")


def new_id() -> str:
    return f"upl_{secrets.token_hex(16)}"


def expires_at(upload: StagedUpload) -> datetime:
    return upload.created_at + LIFETIME


def stage(session: Session, token: ApiToken, blob: StoredBlob, filename: str) -> StagedUpload:
    """Record that ``token`` uploaded ``blob`` (already committed to the store) as ``filename``."""
    upload = StagedUpload(
        public_id=new_id(),
        token_id=token.id,
        filename=filename[:MAX_FILENAME_LENGTH],
        size=blob.size,
        sha256=blob.sha256,
        created_at=utcnow(),
    )
    session.add(upload)
    session.commit()
    return upload


def check_filename(filename: str) -> str:
    """``filename`` as an upload may carry it (the publish makes it safe for a download)."""
    if len(filename) > MAX_FILENAME_LENGTH:
        raise InvalidInputError("filename", f"at most {MAX_FILENAME_LENGTH} characters")
    if not filename.isprintable():
        raise InvalidInputError("filename", "must not contain control characters")
    return filename


def take(session: Session, token_id: int, public_id: object, platform: str) -> StagedUpload:
    """Mark the upload ``public_id`` of ``token_id`` used by a publish (in the caller's
    transaction: a rollback gives it back).

    Raises:
        InvalidInputError: naming ``artifacts.<platform>``, when the upload is unknown (or
            another token's), expired, or used already.
    """
    field = f"artifacts.{platform}"
    if not isinstance(public_id, str) or not public_id:
        raise InvalidInputError(field, "give the id of an upload (POST /api/v1/admin/uploads)")
    if not ID_RE.match(public_id):
        raise InvalidInputError(field, f"no upload {public_id[:80]!r} by this token")
    upload = session.scalar(select(StagedUpload).where(StagedUpload.public_id == public_id))
    if upload is None or upload.token_id != token_id:
        raise InvalidInputError(field, f"no upload {public_id!r} by this token")
    now = utcnow()
    if upload.used_at is not None:
        raise InvalidInputError(
            field, f"upload {public_id} was used already, at {upload.used_at.isoformat()}"
        )
    if now >= expires_at(upload):
        raise InvalidInputError(
            field, f"upload {public_id} expired at {expires_at(upload).isoformat()}; upload again"
        )
    # Conditional, so that of two publishes naming the same upload at once only one takes it.
    taken = session.execute(
        update(StagedUpload)
        .where(StagedUpload.id == upload.id, StagedUpload.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 1) != 1:
        raise InvalidInputError(field, f"upload {public_id} was used already")
    session.refresh(upload)
    return upload


def referenced_digests(session: Session) -> set[str]:
    """The digests of the uploads still recorded (their blobs must stay)."""
    return set(session.scalars(select(StagedUpload.sha256).distinct()))


def is_referenced(session: Session, digest: str) -> bool:
    return (
        session.scalar(select(StagedUpload.id).where(StagedUpload.sha256 == digest).limit(1))
        is not None
    )


def expire(session: Session, older_than: timedelta, *, dry_run: bool = False) -> int:
    """Delete the upload rows created more than ``older_than`` ago, used or not; how many.
    The caller commits (``vigor gc`` then deletes the blobs nothing references)."""
    cutoff = utcnow() - older_than
    old = StagedUpload.created_at < cutoff
    count = session.scalar(select(func.count()).select_from(StagedUpload).where(old)) or 0
    if not dry_run and count:
        session.execute(delete(StagedUpload).where(old))
    return count
