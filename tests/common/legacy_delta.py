"""The delta format servers wrote before zstd (``vigor1``), to prove agents still read it.

This is the encoder those servers ran (copy/insert instructions on a 512-byte grid, the whole
stream lzma-compressed), kept here only to make such patches in tests::

    b"VGRDELTA1\\n"
    b"C" <uvarint offset> <uvarint length>      copy from the old content
    b"I" <uvarint length> <bytes>               insert literal bytes
    b"E"                                        end
"""

from __future__ import annotations

import hashlib
import lzma
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def make_legacy_delta(old_path: Path, new_path: Path, out: Path) -> int:
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
