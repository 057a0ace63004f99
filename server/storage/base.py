"""The artifact store seam: content-addressed blobs, written by streaming, read by range.

Every implementation (local directory, S3) passes
``tests/functional/storage/test_store_conformance.py``. Blobs are named by the hex SHA-256 of their
bytes; a name is computed by the store while the bytes stream in, so a caller can never choose
where bytes land. Empty blobs are stored like any other (publishing refuses empty files itself).
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

SHA256_HEX = re.compile(r"\A[0-9a-f]{64}\Z")
CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """The store could not do what was asked (I/O failure, backend unreachable, bad name)."""


class BlobNotFoundError(StorageError, FileNotFoundError):
    """No blob is stored under that digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no artifact stored with sha256 {digest}")
        self.digest = digest


class SizeLimitError(StorageError):
    """More bytes arrived than the caller allowed."""


class DigestMismatchError(StorageError):
    """The bytes written are not the ones the caller promised (their SHA-256 differs)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"the bytes' sha256 is {actual}, not the expected {expected}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class StoredBlob:
    """What a completed write produced."""

    sha256: str
    size: int


def check_digest(digest: str) -> str:
    """Return ``digest`` when it is a lowercase hex SHA-256, else raise ``StorageError``.

    This is what makes path traversal impossible: only 64 hex characters ever reach a path or key.
    """
    if not isinstance(digest, str) or not SHA256_HEX.match(digest):
        raise StorageError(f"not a sha256 digest: {digest!r}")
    return digest


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that no filename can break (RFC 6266 ``filename*``)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\/;' else "_" for c in filename
    )
    value = f'attachment; filename="{fallback or "download"}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"
    return value


def check_range(start: int, end: int) -> None:
    """Refuse a byte range no blob can satisfy (``start < 0`` or ``end < start``)."""
    if start < 0 or end < start:
        raise StorageError(f"bad byte range {start}-{end}")


class WriteMeter:
    """Counts and hashes the bytes a writer is given; refuses more than ``max_size``, and at the
    end bytes whose digest is not ``expected_sha256`` (when given)."""

    def __init__(self, max_size: int | None, expected_sha256: str | None = None) -> None:
        self.max_size = max_size
        self.expected_sha256 = expected_sha256
        self.size = 0
        self._hash = hashlib.sha256()

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Account for ``data``; raise ``SizeLimitError`` (the caller aborts) past the limit."""
        self.size += len(data)
        if self.max_size is not None and self.size > self.max_size:
            raise SizeLimitError(f"more than {self.max_size} bytes")
        self._hash.update(data)

    def blob(self) -> StoredBlob:
        """The digest and size of everything added so far."""
        return StoredBlob(self._hash.hexdigest(), self.size)

    def final(self) -> StoredBlob:
        """``blob()`` for a commit: raises ``DigestMismatchError`` (the caller aborts) when the
        bytes are not the expected ones."""
        blob = self.blob()
        if self.expected_sha256 is not None and blob.sha256 != self.expected_sha256:
            raise DigestMismatchError(self.expected_sha256, blob.sha256)
        return blob


@dataclass(frozen=True)
class Sweep:
    """What ``sweep_incomplete`` removed: open multipart uploads aborted, temporary files or
    objects deleted."""

    uploads: int = 0
    temporary: int = 0

    def describe(self, dry_run: bool = False) -> str:
        abort, delete = ("would abort", "would delete") if dry_run else ("aborted", "deleted")
        return (
            f"{abort} {self.uploads} incomplete multipart upload(s), "
            f"{delete} {self.temporary} stale temporary file(s)"
        )


class BlobWriter(Protocol):
    """A file-like sink that hashes what it is given; ``commit`` makes the blob visible."""

    def write(self, data: bytes) -> int: ...

    def commit(self) -> StoredBlob:
        """Finish the write and store the blob under its digest (idempotent for equal bytes)."""
        ...

    def abort(self) -> None:
        """Throw away everything written so far; nothing stays behind."""
        ...


class ArtifactStore(Protocol):
    """Content-addressed storage for release artifacts."""

    name: str

    def writer(self, max_size: int | None = None, expected_sha256: str | None = None) -> BlobWriter:
        """Start a streamed write; memory stays bounded whatever the size.

        Raises:
            SizeLimitError: from ``write`` when more than ``max_size`` bytes arrive.
            DigestMismatchError: from ``commit`` (which then aborts: nothing is stored) when
                ``expected_sha256`` is given and the bytes' digest differs.
        """
        ...

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        """Copy ``stream`` to the store in bounded chunks and commit it."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """Size in bytes. Raises ``BlobNotFoundError``."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A readable binary file object positioned at 0. Raises ``BlobNotFoundError``."""
        ...

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        """The bytes ``start`` to ``end`` inclusive, in chunks (HTTP ``Range`` semantics).

        An ``end`` past the last byte is clipped to it. Errors are raised by the call itself,
        before the first chunk, so a server can still answer with an error status.

        Raises:
            BlobNotFoundError: nothing is stored under ``digest``.
            StorageError: ``start < 0``, ``end < start``, or ``start`` is past the last byte.
        """
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob; a missing blob is not an error."""
        ...

    def digests(self) -> Iterator[str]:
        """Every stored digest (for garbage collection and audits)."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """A filesystem path to serve with sendfile, or None for remote stores."""
        ...

    def presigned_url(
        self, digest: str, expires_in: int, filename: str | None = None
    ) -> str | None:
        """A short-lived URL that serves the blob without credentials, or None for local stores."""
        ...

    def ping(self) -> None:
        """Raise ``StorageError`` when the store is not usable (for /healthz)."""
        ...

    def sweep_incomplete(self, older_than_seconds: float, *, dry_run: bool = False) -> Sweep:
        """Remove what uploads that never finished left behind (temporary files, temporary
        objects, open multipart uploads), if older than ``older_than_seconds``; ``dry_run``
        only counts them."""
        ...


def copy_into(store: ArtifactStore, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
    """Stream ``stream`` into ``store`` and commit; on any failure nothing is left behind."""
    sink = store.writer(max_size=max_size)
    try:
        while chunk := stream.read(CHUNK_SIZE):
            sink.write(chunk)
        return sink.commit()
    except BaseException:
        sink.abort()
        raise
