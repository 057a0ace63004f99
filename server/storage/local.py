"""Local directory store: content-addressed, atomic writes, no path a caller can steer.

A write streams into ``root/.tmp/upload-*`` while it is hashed; ``commit`` fsyncs the file, makes it
read-only, renames it to ``root/<aa>/<bb>/<sha256>`` and fsyncs the directory, so a blob is either
absent or complete, even across a crash. Temp files a crash leaves behind are removed by
``sweep_incomplete`` (``vigor gc``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from server.storage.base import (
    CHUNK_SIZE,
    SHA256_HEX,
    BlobNotFoundError,
    DigestMismatchError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    Sweep,
    WriteMeter,
    check_digest,
    check_range,
    copy_into,
)

READ_ONLY = 0o444  # stored blobs are immutable; unlink and rename need only the directory's rights

# Written bytes are handed to the disk every this many bytes, so the fsync at commit waits only
# for the last few instead of the whole artifact (1 GiB took seconds to flush at the end).
WRITEBACK_STEP = 8 * 1024 * 1024


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` to disk, without waiting.

    On Linux, ``POSIX_FADV_DONTNEED`` starts writeback of dirty pages in the range (and drops
    the pages already clean, which keeps a large upload from crowding other data out of the
    page cache); ``fsync`` still makes it durable. A no-op where ``posix_fadvise`` is missing.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path, root: Path) -> None:
    """Create ``path`` (below ``root``) and fsync each parent that gained an entry."""
    missing = []
    while path != root and not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent writer made it first
            directory.mkdir()
        _fsync_dir(directory.parent)


class _LocalWriter:
    """Bytes go straight to a temp file; nothing is buffered beyond the caller's chunk."""

    def __init__(
        self, store: LocalStore, max_size: int | None, expected_sha256: str | None = None
    ) -> None:
        self._store = store
        self._meter = WriteMeter(max_size, expected_sha256)
        try:
            fd, name = tempfile.mkstemp(dir=store.temp_dir, prefix="upload-")
        except OSError as exc:
            raise StorageError(
                f"cannot create a temporary file in {store.temp_dir}: {exc.strerror}"
            ) from exc
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._flushed = 0  # bytes before this offset are on their way to disk
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise StorageError("write after commit or abort")
        try:
            self._meter.add(data)
        except SizeLimitError:
            self.abort()
            raise
        try:
            view = memoryview(data)
            while view:
                written = self._file.write(view)
                view = view[written:]
            if self._meter.size - self._flushed >= WRITEBACK_STEP:
                _start_writeback(
                    self._file.fileno(), self._flushed, self._meter.size - self._flushed
                )
                self._flushed = self._meter.size
        except OSError as exc:
            self.abort()
            raise StorageError(f"writing failed: {exc.strerror}") from exc
        return len(data)

    def commit(self) -> StoredBlob:
        if self._done:
            raise StorageError("commit after commit or abort")
        try:
            blob = self._meter.final()
        except DigestMismatchError:
            self.abort()
            raise
        try:
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._path, READ_ONLY)
            final = self._store.path_for(blob.sha256)
            _make_dirs(final.parent, self._store.root)
            # Equal bytes under an equal name: replacing an existing copy is harmless, atomic,
            # and readers holding the old file keep reading it.
            os.replace(self._path, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            self.abort()
            raise StorageError(f"storing failed: {exc.strerror}") from exc
        self._done = True
        return blob

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)


class LocalStore:
    """Blobs under ``root/<aa>/<bb>/<sha256>``; temp files under ``root/.tmp``.

    Args:
        root: the directory that holds the store (the caller picks it; ``releases/`` by default).
    """

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.temp_dir = self.root / ".tmp"

    def path_for(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists). Raises ``StorageError``."""
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def writer(
        self, max_size: int | None = None, expected_sha256: str | None = None
    ) -> _LocalWriter:
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.temp_dir}: {exc.strerror}") from exc
        return _LocalWriter(self, max_size, expected_sha256)

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        return copy_into(self, stream, max_size)

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None
        except OSError as exc:
            raise StorageError(f"cannot stat {digest}: {exc.strerror}") from exc

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path_for(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None
        except OSError as exc:
            raise StorageError(f"cannot read {digest}: {exc.strerror}") from exc

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        check_range(start, end)
        handle = self.open(digest)
        try:
            size = os.fstat(handle.fileno()).st_size
            if start >= size:
                raise StorageError(f"byte {start} is past the end of {digest} ({size} bytes)")
            handle.seek(start)
        except BaseException:
            handle.close()
            raise
        return self._chunks(handle, min(end, size - 1) - start + 1)

    @staticmethod
    def _chunks(handle: BinaryIO, remaining: int) -> Iterator[bytes]:
        with handle:
            while remaining > 0:
                chunk = handle.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def delete(self, digest: str) -> None:
        try:
            self.path_for(digest).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {digest}: {exc.strerror}") from exc

    def digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            name = path.name
            if (
                SHA256_HEX.match(name)
                and path.parent.name == name[2:4]
                and path.parent.parent.name == name[:2]
                and path.is_file()
            ):
                yield name

    def local_path(self, digest: str) -> Path | None:
        return self.path_for(digest)

    def presigned_url(
        self, digest: str, expires_in: int, filename: str | None = None
    ) -> str | None:
        check_digest(digest)
        return None

    def ping(self) -> None:
        """Prove the root is a writable directory by creating and removing a temp file there."""
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.temp_dir, prefix="ping-"):
                pass
        except OSError as exc:
            raise StorageError(f"{self.root} is not a writable directory: {exc.strerror}") from exc

    def sweep_incomplete(self, older_than_seconds: float, *, dry_run: bool = False) -> Sweep:
        """Remove temp files that crashed uploads left behind (last written more than
        ``older_than_seconds`` ago); says how many went.

        A live upload keeps touching its file, so a generous ``older_than_seconds`` (an hour)
        only ever catches the abandoned ones; ``dry_run`` only counts them.
        """
        if not self.temp_dir.is_dir():
            return Sweep()
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.temp_dir.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    if not dry_run:
                        path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # finished or swept by someone else meanwhile
            except OSError as exc:
                raise StorageError(f"cannot remove {path}: {exc.strerror}") from exc
        return Sweep(temporary=removed)
