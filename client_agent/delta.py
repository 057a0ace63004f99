"""Applying a Vigor delta (format in server/domain/delta.py) with the standard library only.

Streaming: the old content is read by offset, the result written in order; memory stays bounded.
Malformed input (bad magic, a copy outside the old content, output past the expected size) is
refused; the caller then verifies the result's SHA-256 against the signed patch document.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
from pathlib import Path
from typing import IO

from client_agent.errors import ArtifactError

__all__ = [
    "apply_delta",
    "content_of",
]

MAGIC = b"VGRDELTA1\n"
CHUNK = 1024 * 1024  # bounded memory per read


def _uvarint(stream: IO[bytes]) -> int:
    value = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise ArtifactError("the patch ends in the middle of an instruction")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ArtifactError("the patch holds an impossible number")


def apply_delta(old: Path, patch: Path, out: Path, max_size: int) -> str:
    """Write ``old`` + ``patch`` to ``out``; returns the result's SHA-256."""
    digest = hashlib.sha256()
    written = 0
    old_size = old.stat().st_size
    try:
        with lzma.open(patch, "rb") as ops, old.open("rb") as source, out.open("wb") as sink:
            if ops.read(len(MAGIC)) != MAGIC:
                raise ArtifactError("not a Vigor patch")
            while True:
                op = ops.read(1)
                if op == b"E":
                    break
                if op == b"C":
                    offset, length = _uvarint(ops), _uvarint(ops)
                    if offset + length > old_size:
                        raise ArtifactError("the patch copies from outside the installed content")
                    source.seek(offset)
                    reader: IO[bytes] = source
                elif op == b"I":
                    length = _uvarint(ops)
                    reader = ops
                else:
                    raise ArtifactError("the patch holds an unknown instruction")
                if written + length > max_size:
                    raise ArtifactError("the patch produces more than the signed size")
                while length:
                    chunk = reader.read(min(CHUNK, length))
                    if not chunk:
                        raise ArtifactError("the patch or the installed content ended early")
                    digest.update(chunk)
                    sink.write(chunk)
                    written += len(chunk)
                    length -= len(chunk)
    except (lzma.LZMAError, EOFError, OSError) as exc:
        raise ArtifactError(f"the patch could not be applied: {exc}") from None
    return digest.hexdigest()


def content_of(archive: Path, out: Path) -> str:
    """The uncompressed content of a kept .tar.gz (or tar) artifact; returns its SHA-256."""
    digest = hashlib.sha256()
    with archive.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        source: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
        with out.open("wb") as sink:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
    return digest.hexdigest()
