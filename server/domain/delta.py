"""Binary deltas between the uncompressed contents of two release archives, made with zstd.

Deltas are taken between the *uncompressed* tars (a small change early in a gzip stream changes
every byte after it). The encoder is zstd with the old content as a raw-content *prefix* and
long-distance matching, which is what ``zstd --patch-from`` does (``bench/delta.py`` compares
the two on real releases). A dictionary loaded the usual way (python-zstandard's
``ZstdCompressionDict``) is no substitute: zstd builds its tables for a dictionary without
long-distance matching, and on a 64 MB tar the patch was 80 times larger.

Format ``zstd1`` (the patches document names it; the agent refuses anything else under it)::

    b"VGRZSTD1\\n"
    then, until the new content is complete, segments of at most SEGMENT bytes of it:
    >QQQQ  prefix_offset, prefix_size, content_size, frame_size
    frame_size bytes: one zstd frame of content_size bytes, made with
                      old[prefix_offset : prefix_offset + prefix_size] as its prefix

Memory stays bounded for any artifact size, on both sides: a frame refers to at most PREFIX
bytes of the old content (all of it when it fits, else a window around the segment's place in
it) and holds at most SEGMENT bytes of new content, so its window is at most PREFIX + SEGMENT
(the agent refuses larger ones). Contents up to PREFIX bytes, which is most applications, get
exactly ``--patch-from``'s result; larger ones lose only the matches that moved further than
the window reaches.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # pragma: no cover - the backport is the same module before 3.14
    from backports import zstd

FORMAT = "zstd1"
MAGIC = b"VGRZSTD1\n"
SEGMENT_HEADER = struct.Struct(">QQQQ")
SEGMENT = 64 * 1024 * 1024  # new content per frame
PREFIX = 128 * 1024 * 1024  # old content one frame refers to
LEVEL = 7  # measured in bench/delta.py: ~2 s and ~220 MB for a 64 MB tar, patch ≤ zstd -3's
MIN_PREFIX = 8  # zstd's shortest dictionary
CHUNK = 1024 * 1024  # fed to the encoder between two looks at the clock


ZstdError = zstd.ZstdError  # a malformed frame (the callers catch it with the rest)


class DeltaTooSlowError(Exception):
    """Generation passed its time limit (the patch is not made)."""


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
    # Peeked, not read and sought back: a store's stream (an S3 body) cannot seek.
    buffered = archive if isinstance(archive, io.BufferedReader) else io.BufferedReader(archive)  # type: ignore[type-var]
    head = buffered.peek(2)[:2]
    source: BinaryIO = gzip.GzipFile(fileobj=buffered) if head == b"\x1f\x8b" else buffered  # type: ignore[assignment]
    with out.open("wb") as sink:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return Content(out, size, digest.hexdigest())


def prefix_window(old_size: int, new_size: int, start: int, length: int) -> tuple[int, int]:
    """The old content a segment ``[start, start + length)`` of the new one refers to.

    All of it when it fits in PREFIX; else PREFIX bytes around the segment's proportional place
    in the old content (what a release mostly keeps is its order), clamped to the old content.
    Nothing under MIN_PREFIX bytes (zstd refuses so short a prefix).
    """
    if old_size < MIN_PREFIX:
        return 0, 0
    if old_size <= PREFIX:
        return 0, old_size
    centre = start * old_size // max(new_size, 1) + length // 2
    offset = min(max(centre - PREFIX // 2, 0), old_size - PREFIX)
    return offset, PREFIX


def window_log(prefix_size: int, content_size: int) -> int:
    """The smallest window (log2) that reaches from a segment's end back to its prefix's start."""
    return max(10, (prefix_size + content_size).bit_length())


def _prefix(old: BinaryIO, offset: int, size: int) -> zstd.ZstdDict | None:
    """The old content a frame refers to, as a raw-content dictionary (used as its prefix)."""
    if not size:
        return None
    old.seek(offset)
    return zstd.ZstdDict(old.read(size), is_raw=True)  # zstd keeps a copy; the read is freed


def _segment(
    sink: BinaryIO, old: BinaryIO, new: BinaryIO, sizes: tuple[int, int], deadline: float
) -> None:
    """Compress the next SEGMENT bytes (at most) of ``new`` into ``sink`` as one segment."""
    start = new.tell()
    length = min(SEGMENT, sizes[1] - start)
    offset, size = prefix_window(sizes[0], sizes[1], start, length)
    options: dict[int, int] = {
        zstd.CompressionParameter.compression_level: LEVEL,
        zstd.CompressionParameter.window_log: window_log(size, length),
        zstd.CompressionParameter.enable_long_distance_matching: 1,
        zstd.CompressionParameter.content_size_flag: 1,
        zstd.CompressionParameter.checksum_flag: 0,  # the rebuilt content's SHA-256 is signed
    }
    prefix = _prefix(old, offset, size)
    encoder = zstd.ZstdCompressor(options=options, zstd_dict=prefix.as_prefix if prefix else None)
    encoder.set_pledged_input_size(length)
    header_at = sink.tell()
    sink.write(SEGMENT_HEADER.pack(0, 0, 0, 0))  # written once the frame's size is known
    left, frame_size = length, 0
    while left:
        if time.monotonic() > deadline:
            raise DeltaTooSlowError("generation passed its time limit")
        chunk = new.read(min(CHUNK, left))
        if not chunk:
            raise OSError("the new content ended early")
        left -= len(chunk)
        frame_size += sink.write(encoder.compress(chunk))
    frame_size += sink.write(encoder.flush(zstd.ZstdCompressor.FLUSH_FRAME))
    sink.seek(header_at)
    sink.write(SEGMENT_HEADER.pack(offset, size, length, frame_size))
    sink.seek(0, 2)


def make_delta(old_path: Path, new_path: Path, out: Path, time_limit: float = 600.0) -> int:
    """Write the delta from ``old_path`` to ``new_path`` content to ``out``; returns its size.

    Raises:
        DeltaTooSlowError: it took longer than ``time_limit`` seconds (``out`` is incomplete).
    """
    deadline = time.monotonic() + time_limit
    sizes = (old_path.stat().st_size, new_path.stat().st_size)
    with old_path.open("rb") as old, new_path.open("rb") as new, out.open("w+b") as sink:
        sink.write(MAGIC)
        while new.tell() < sizes[1]:
            _segment(sink, old, new, sizes, deadline)
    return out.stat().st_size
