"""The delta format: the server writes it, the agent (standard library only) applies it."""

from __future__ import annotations

import hashlib
import lzma
import os
from pathlib import Path

import pytest

from client_agent.delta import apply_delta
from client_agent.errors import ArtifactError
from server.domain.delta import MAGIC, make_delta, uvarint


def roundtrip(tmp_path: Path, old: bytes, new: bytes) -> int:
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    size = make_delta(tmp_path / "old", tmp_path / "new", tmp_path / "patch")
    sha = apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", len(new))
    assert (tmp_path / "out").read_bytes() == new
    assert sha == hashlib.sha256(new).hexdigest()
    return size


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"", b""),
        (b"", b"brand new"),
        (b"something", b""),
        (os.urandom(100_000), os.urandom(100_000)),
        (b"x" * 50_000, b"x" * 50_000),
    ],
    ids=["empty", "from-nothing", "to-nothing", "unrelated", "identical-runs"],
)
def test_round_trips(tmp_path: Path, old: bytes, new: bytes) -> None:
    roundtrip(tmp_path, old, new)


def test_moved_and_edited_members_cost_little(tmp_path: Path) -> None:
    members = [os.urandom(20_000 + 512 * i) for i in range(20)]
    old = b"".join(m + b"\0" * (-len(m) % 512) for m in members)
    edited = [
        *members[:5],
        members[5][:100] + b"CHANGED" + members[5][100:],
        os.urandom(3000),
        *members[6:],
    ]
    new = b"".join(m + b"\0" * (-len(m) % 512) for m in edited)
    size = roundtrip(tmp_path, old, new)
    assert size < len(new) * 0.1, f"{size} of {len(new)}"


def ops(*parts: bytes) -> bytes:
    return lzma.compress(MAGIC + b"".join(parts))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lzma.compress(b"not a patch"), "not a Vigor patch"),
        (ops(b"C" + uvarint(0) + uvarint(10_000), b"E"), "outside the installed content"),
        (ops(b"I" + uvarint(50) + b"short"), "ended early"),
        (ops(b"X"), "unknown instruction"),
        (ops(b"I" + uvarint(2000) + b"y" * 2000, b"E"), "more than the signed size"),
        (b"garbage that is not lzma", "could not be applied"),
    ],
    ids=[
        "bad-magic",
        "copy-out-of-range",
        "truncated-literal",
        "unknown-op",
        "oversize",
        "not-lzma",
    ],
)
def test_malformed_patches_are_refused(tmp_path: Path, patch: bytes, message: str) -> None:
    (tmp_path / "old").write_bytes(b"old content" * 10)
    (tmp_path / "patch").write_bytes(patch)
    with pytest.raises(ArtifactError, match=message):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 1000)
