"""Local directory store: content-addressed, atomic writes, no path a caller can steer."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from server.storage.base import (
    CHUNK_SIZE,
    BlobNotFoundError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    WriteMeter,
    check_digest,
    copy_into,
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalWriter:
    def __init__(self, store: LocalStore, max_size: int | None) -> None:
        self._store = store
        self._meter = WriteMeter(max_size)
        try:
            fd, name = tempfile.mkstemp(dir=store.temp_dir, prefix="upload-")
        except OSError as exc:
            raise StorageError(
                f"cannot create a temporary file in {store.temp_dir}: {exc.strerror}"
            ) from exc
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb", buffering=0)
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
        except OSError as exc:
            self.abort()
            raise StorageError(f"writing failed: {exc.strerror}") from exc
        return len(data)

    def commit(self) -> StoredBlob:
        if self._done:
            raise StorageError("commit after commit or abort")
        blob = self._meter.blob()
        digest = blob.sha256
        try:
            os.fsync(self._file.fileno())
            self._file.close()
            final = self._store.path_for(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self._path, 0o444)
            os.replace(self._path, final)  # equal bytes under an equal name: replacing is harmless
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
        try:
            self._file.close()
        finally:
            self._path.unlink(missing_ok=True)


class LocalStore:
    """Blobs under ``root/aa/bb/<sha256>``; temp files under ``root/.tmp``."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.temp_dir = self.root / ".tmp"

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def writer(self, max_size: int | None = None) -> _LocalWriter:
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.temp_dir}: {exc.strerror}") from exc
        return _LocalWriter(self, max_size)

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        return copy_into(self, stream, max_size)

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path_for(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None
        except OSError as exc:
            raise StorageError(f"cannot read {digest}: {exc.strerror}") from exc

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        if start < 0 or end < start:
            raise StorageError(f"bad range {start}-{end}")
        with self.open(digest) as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = handle.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
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
            if path.is_file() and path.parent.parent.parent == self.root:
                yield path.name

    def local_path(self, digest: str) -> Path | None:
        return self.path_for(digest)

    def presigned_url(
        self, digest: str, expires_in: int, filename: str | None = None
    ) -> str | None:
        return None

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.root} is not usable: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"{self.root} is not writable")

    def sweep_temp(self, older_than_seconds: float) -> int:
        """Remove temp files abandoned by crashed uploads; returns how many."""
        if not self.temp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.temp_dir.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
