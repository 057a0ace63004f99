"""Binary deltas between the uncompressed contents of two release archives.

Why not bsdiff: the agent may depend on ``cryptography`` and ``packaging`` only, so it must apply
patches with the standard library, and bspatch's byte-wise additions are too slow in pure Python.
Deltas here are copy/insert instructions, applied with slicing; and they are taken between the
*uncompressed* tars, because a small change early in a gzip stream changes every byte after it.

Format (the whole stream lzma-compressed)::

    b"VGRDELTA1\\n"
    b"C" <uvarint offset> <uvarint length>      copy from the old content
    b"I" <uvarint length> <bytes>               insert literal bytes
    b"E"                                        end

The generator indexes the old content by 4 KiB blocks at 512-byte steps (tar members start on
512-byte boundaries, so unchanged files match wherever they moved), then walks the new content
at 512-byte steps, extending every match as far as it goes.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"VGRDELTA1\n"
BLOCK = 4096
STEP = 512
COMPARE = 64 * 1024


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True)
class Content:
    """An archive's uncompressed content: where it is, its size and SHA-256."""

    path: Path
    size: int
    sha256: str


def uncompressed(archive: BinaryIO, out: Path) -> Content:
    """Write the content of a .tar.gz (or a plain tar) to ``out``; the bytes the patch is about."""
    digest = hashlib.sha256()
    size = 0
    head = archive.read(2)
    archive.seek(0)
    source: BinaryIO = gzip.GzipFile(fileobj=archive) if head == b"\x1f\x8b" else archive  # type: ignore[assignment]
    with out.open("wb") as sink:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return Content(out, size, digest.hexdigest())


@contextmanager
def _mapped(path: Path) -> Iterator[mmap.mmap | bytes]:
    if path.stat().st_size == 0:
        yield b""
        return
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        yield view


def _match_length(old: mmap.mmap | bytes, new: mmap.mmap | bytes, i: int, j: int) -> int:
    """How far old[i:] and new[j:] agree (whole chunks first, then the tail)."""
    n = 0
    limit = min(len(old) - i, len(new) - j)
    while n + COMPARE <= limit and old[i + n : i + n + COMPARE] == new[j + n : j + n + COMPARE]:
        n += COMPARE
    step = 4096
    while step:
        while n + step <= limit and old[i + n : i + n + step] == new[j + n : j + n + step]:
            n += step
        step //= 8
    return n


def make_delta(old_path: Path, new_path: Path, out: Path) -> int:
    """Write the compressed delta from ``old_path`` to ``new_path`` content; returns its size."""
    with _mapped(old_path) as old, _mapped(new_path) as new, lzma.open(out, "wb", preset=6) as sink:
        index: dict[bytes, int] = {}
        for i in range(0, len(old) - BLOCK + 1, STEP):
            index.setdefault(hashlib.blake2b(old[i : i + BLOCK], digest_size=16).digest(), i)
        sink.write(MAGIC)
        pos = literal = 0
        while pos + BLOCK <= len(new):
            key = hashlib.blake2b(new[pos : pos + BLOCK], digest_size=16).digest()
            start = index.get(key)
            if start is None or old[start : start + BLOCK] != new[pos : pos + BLOCK]:
                pos += STEP
                continue
            length = _match_length(old, new, start, pos)
            if pos > literal:
                sink.write(b"I" + uvarint(pos - literal) + new[literal:pos])
            sink.write(b"C" + uvarint(start) + uvarint(length))
            literal = pos + length
            pos = -(-literal // STEP) * STEP  # back on the 512-byte grid tar members start on
        if len(new) > literal:
            sink.write(b"I" + uvarint(len(new) - literal) + new[literal:])
        sink.write(b"E")
    return out.stat().st_size
