"""Durable small writes, fast hashing of large files, and the crash test hook."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

__all__ = [
    "CHUNK",
    "CRASH_VARIABLE",
    "crash_point",
    "fsync_dir",
    "hash_file",
    "write_atomic",
]

# 1 MiB reads: large enough that hashlib (which releases the GIL past 2 KiB) runs at full speed,
# small enough that memory stays flat whatever the artifact size.
CHUNK = 1024 * 1024

CRASH_VARIABLE = "VIGOR_AGENT_TEST_CRASH_AT"


def crash_point(step: str) -> None:
    """Test hook: die like ``kill -9`` at a named step, only when ``VIGOR_AGENT_TEST_CRASH_AT``
    names it. The crash tests run the real CLI and need the kill to land at an exact point."""
    if os.environ.get(CRASH_VARIABLE) == step:
        os.kill(os.getpid(), 9)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: this file system cannot sync a directory
            raise
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write → fsync → rename → fsync the directory: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def hash_file(path: Path, limit: int | None = None) -> tuple[int, hashlib._Hash]:
    """Length and running SHA-256 of ``path`` (of its first ``limit`` bytes when given).

    One reusable buffer and ``readinto``: no allocation per chunk, so hashing runs at hashlib's
    own speed and the memory used does not grow with the file.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    with path.open("rb", buffering=0) as handle:
        while limit is None or total < limit:
            want = CHUNK if limit is None else min(CHUNK, limit - total)
            count = handle.readinto(view[:want])
            if not count:
                break
            digest.update(view[:count])
            total += count
    return total, digest
