"""Applying a delta patch: zstd with the installed content as prefix (``zstd1``, written by
server/domain/delta.py), or the copy/insert format of earlier servers (``vigor1``).

The signed patches document names each patch's format; :func:`apply_delta` reads only that one.
Streaming: the old content is read by offset, the result written in order; memory stays bounded
whatever the artifact's size. A ``zstd1`` segment may refer to at most PREFIX bytes of the old
content and hold at most SEGMENT bytes of the new one, so the decoder never needs a window larger
than their sum (``window_log_max``): more is refused, not allocated. Malformed input (bad magic, a
range outside the old content, output past the expected size) is refused; the caller then
verifies the result's SHA-256 against the signed patch document.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from client_agent.errors import ArtifactError

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # pragma: no cover - the backport is the same module before 3.14
    from backports import zstd

__all__ = [
    "PATCH_FORMATS",
    "VIGOR1",
    "ZSTD1",
    "apply_delta",
    "content_of",
]

ZSTD1 = "zstd1"
VIGOR1 = "vigor1"
PATCH_FORMATS = (ZSTD1, VIGOR1)  # what this agent reads, told to the server with each check
MAGIC = b"VGRDELTA1\n"
ZSTD_MAGIC = b"VGRZSTD1\n"
SEGMENT_HEADER = struct.Struct(">QQQQ")
SEGMENT = 64 * 1024 * 1024
PREFIX = 128 * 1024 * 1024
WINDOW_LOG_MAX = (PREFIX + SEGMENT).bit_length()
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


def apply_delta(old: Path, patch: Path, out: Path, max_size: int, patch_format: str) -> str:
    """Write ``old`` + ``patch`` (in ``patch_format``) to ``out``; returns the result's SHA-256.

    Raises:
        ArtifactError: the patch is malformed, refers outside ``old``, would write more than
            ``max_size`` bytes or needs more memory than a segment may; or the format is not
            one of PATCH_FORMATS.
    """
    if patch_format == ZSTD1:
        return _apply_zstd1(old, patch, out, max_size)
    if patch_format == VIGOR1:
        return _apply_vigor1(old, patch, out, max_size)
    raise ArtifactError(f"the patch is in a format this agent cannot read ({patch_format})")


def _apply_vigor1(old: Path, patch: Path, out: Path, max_size: int) -> str:
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


def _apply_zstd1(old: Path, patch: Path, out: Path, max_size: int) -> str:
    digest = hashlib.sha256()
    written = 0
    old_size = old.stat().st_size
    try:
        with patch.open("rb") as frames, old.open("rb") as source, out.open("wb") as sink:
            if frames.read(len(ZSTD_MAGIC)) != ZSTD_MAGIC:
                raise ArtifactError("not a Vigor zstd patch")
            while header := frames.read(SEGMENT_HEADER.size):
                if len(header) < SEGMENT_HEADER.size:
                    raise ArtifactError("the patch ends in the middle of a segment header")
                offset, size, length, frame_size = SEGMENT_HEADER.unpack(header)
                if size > PREFIX or length > SEGMENT:
                    raise ArtifactError("the patch has a segment larger than allowed")
                if offset + size > old_size:
                    raise ArtifactError("the patch refers to outside the installed content")
                if written + length > max_size:
                    raise ArtifactError("the patch produces more than the signed size")
                source.seek(offset)
                prefix = zstd.ZstdDict(source.read(size), is_raw=True) if size else None
                for chunk in _segment(frames, prefix, frame_size, length):
                    digest.update(chunk)
                    sink.write(chunk)
                written += length
                del prefix  # before the next segment's is read: one prefix in memory at a time
    except (zstd.ZstdError, OSError, ValueError) as exc:  # ValueError: a prefix too short
        raise ArtifactError(f"the patch could not be applied: {exc}") from None
    return digest.hexdigest()


def _segment(
    frames: IO[bytes], prefix: zstd.ZstdDict | None, frame_size: int, length: int
) -> Iterator[bytes]:
    """The ``length`` bytes one frame of ``frame_size`` bytes decodes to, in bounded pieces."""
    decoder = zstd.ZstdDecompressor(
        zstd_dict=prefix.as_prefix if prefix else None,
        options={zstd.DecompressionParameter.window_log_max: WINDOW_LOG_MAX},
    )
    remaining, produced = frame_size, 0
    while not decoder.eof:
        data = b""
        if decoder.needs_input:
            data = frames.read(min(CHUNK, remaining))
            if not data:
                raise ArtifactError("the patch ends in the middle of a segment")
            remaining -= len(data)
        chunk = decoder.decompress(data, max_length=CHUNK)
        produced += len(chunk)
        if produced > length:
            raise ArtifactError("a patch segment produces more than it says")
        yield chunk
    if remaining or decoder.unused_data:
        raise ArtifactError("a patch segment holds bytes after its end")
    if produced != length:
        raise ArtifactError("a patch segment produces less than it says")


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
