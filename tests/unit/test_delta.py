"""Delta patches: the server writes ``zstd1``, the agent applies it, and still applies the
``vigor1`` patches earlier servers wrote; malformed or oversized patches are refused."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
from pathlib import Path

import pytest
from backports import zstd

from client_agent import delta as agent_delta
from client_agent.delta import apply_delta
from client_agent.errors import ArtifactError
from server.domain import delta
from server.domain.delta import SEGMENT_HEADER, DeltaTooSlowError, make_delta
from tests.common.legacy_delta import MAGIC, make_legacy_delta, uvarint


def roundtrip(tmp_path: Path, old: bytes, new: bytes, patch_format: str = "zstd1") -> int:
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    make = make_delta if patch_format == "zstd1" else make_legacy_delta
    size = make(tmp_path / "old", tmp_path / "new", tmp_path / "patch")
    sha = apply_delta(
        tmp_path / "old", tmp_path / "patch", tmp_path / "out", len(new), patch_format
    )
    assert (tmp_path / "out").read_bytes() == new
    assert sha == hashlib.sha256(new).hexdigest()
    return size


CASES = {
    "empty": (b"", b""),
    "from-nothing": (b"", b"brand new"),
    "to-nothing": (b"something", b""),
    "unrelated": (os.urandom(100_000), os.urandom(100_000)),
    "identical-runs": (b"x" * 50_000, b"x" * 50_000),
}


@pytest.mark.parametrize("patch_format", ["zstd1", "vigor1"])
@pytest.mark.parametrize(("old", "new"), CASES.values(), ids=CASES.keys())
def test_round_trips(tmp_path: Path, old: bytes, new: bytes, patch_format: str) -> None:
    roundtrip(tmp_path, old, new, patch_format)


def edited_tar_like() -> tuple[bytes, bytes]:
    """Members of random bytes; one edited so that its length changes, one inserted."""
    members = [os.urandom(20_000 + 333 * i) for i in range(20)]
    old = b"".join(m + b"\0" * (-len(m) % 512) for m in members)
    edited = [
        *members[:5],
        members[5][:100] + b"CHANGED" + members[5][100:],
        os.urandom(3000),
        *members[6:],
    ]
    return old, b"".join(m + b"\0" * (-len(m) % 512) for m in edited)


def test_moved_and_edited_members_cost_little(tmp_path: Path) -> None:
    old, new = edited_tar_like()
    size = roundtrip(tmp_path, old, new)
    # The inserted member (3000 random bytes) is most of it: everything else is copied.
    assert size < 3000 + 1000, f"{size} of {len(new)}"


def test_large_contents_are_cut_into_segments_each_with_a_window_of_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small limits stand in for 64 MiB segments and a 128 MiB prefix.
    for module in (delta, agent_delta):
        monkeypatch.setattr(module, "SEGMENT", 64 * 1024)
        monkeypatch.setattr(module, "PREFIX", 128 * 1024)
    old = os.urandom(600 * 1024)
    new = old[:300_000] + b"an edit" + old[300_000:]
    size = roundtrip(tmp_path, old, new)
    assert size < len(new) * 0.02, "each segment finds its bytes in its window of the old"
    frames = segments(tmp_path / "patch")
    assert len(frames) == -(-len(new) // (64 * 1024))
    assert all(prefix_size == 128 * 1024 for _, prefix_size, _, _ in frames)
    assert sum(length for _, _, length, _ in frames) == len(new)


def segments(patch: Path) -> list[tuple[int, int, int, int]]:
    data = patch.read_bytes()[len(delta.MAGIC) :]
    found = []
    while data:
        header = SEGMENT_HEADER.unpack(data[: SEGMENT_HEADER.size])
        found.append(header)
        data = data[SEGMENT_HEADER.size + header[3] :]
    return found


def test_generation_stops_at_its_time_limit(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"old")
    (tmp_path / "new").write_bytes(b"new" * 1000)
    with pytest.raises(DeltaTooSlowError):
        make_delta(tmp_path / "old", tmp_path / "new", tmp_path / "patch", time_limit=-1)


def zstd_patch(*segments_: tuple[tuple[int, int, int], bytes]) -> bytes:
    """A ``zstd1`` patch of the given (prefix offset, prefix size, content size) + frame."""
    return delta.MAGIC + b"".join(
        SEGMENT_HEADER.pack(*header, len(frame)) + frame for header, frame in segments_
    )


OLD = b"old content " * 100
FRAME = zstd.compress(b"y" * 2000)


def _huge_window() -> bytes:
    """A frame whose header asks for a 1 GiB window (no content size: zstd keeps the window)."""
    encoder = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 30})
    return encoder.compress(b"z" * 100) + encoder.flush(zstd.ZstdCompressor.FLUSH_FRAME)


HUGE_WINDOW = _huge_window()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (b"VGRDELTA1\n", "not a Vigor zstd patch"),
        (zstd_patch(((0, 0, 2000), FRAME))[:-5], "ends in the middle of a segment"),
        (zstd_patch(((0, 0, 2000), FRAME))[:20], "in the middle of a segment header"),
        (zstd_patch(((0, len(OLD) + 1, 2000), FRAME)), "outside the installed content"),
        (zstd_patch(((0, 0, 1999), FRAME)), "produces more than it says"),
        (zstd_patch(((0, 0, 2001), FRAME)), "produces less than it says"),
        (zstd_patch(((0, 0, 2000), FRAME + b"x")), "bytes after its end"),
        (zstd_patch(((0, 0, 2000), FRAME), ((0, 0, 2000), FRAME)), "more than the signed size"),
        (zstd_patch(((0, 0, 2000), b"not a zstd frame at all")), "could not be applied"),
        (zstd_patch(((0, 0, 100), HUGE_WINDOW)), "could not be applied"),
    ],
    ids=[
        "old-format-under-the-new-name",
        "truncated-frame",
        "truncated-header",
        "prefix-out-of-range",
        "longer-than-said",
        "shorter-than-said",
        "trailing-bytes",
        "oversize",
        "not-zstd",
        "window-too-large-for-the-agent",
    ],
)
def test_malformed_zstd_patches_are_refused(tmp_path: Path, patch: bytes, message: str) -> None:
    (tmp_path / "old").write_bytes(OLD)
    (tmp_path / "patch").write_bytes(patch)
    with pytest.raises(ArtifactError, match=message):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 3000, "zstd1")


@pytest.mark.parametrize(
    ("size", "length"),
    [(agent_delta.PREFIX + 1, 10), (0, agent_delta.SEGMENT + 1)],
    ids=["prefix", "segment"],
)
def test_segments_larger_than_the_agent_allows_are_refused_before_reading(
    tmp_path: Path, size: int, length: int
) -> None:
    (tmp_path / "old").write_bytes(OLD)
    (tmp_path / "patch").write_bytes(zstd_patch(((0, size, length), FRAME)))
    with pytest.raises(ArtifactError, match="larger than allowed"):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 2**40, "zstd1")


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(OLD)
    (tmp_path / "patch").write_bytes(zstd_patch(((0, 0, 2000), FRAME)))
    with pytest.raises(ArtifactError, match=r"cannot read \(bsdiff4\)"):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 3000, "bsdiff4")


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
def test_malformed_legacy_patches_are_refused(tmp_path: Path, patch: bytes, message: str) -> None:
    (tmp_path / "old").write_bytes(b"old content" * 10)
    (tmp_path / "patch").write_bytes(patch)
    with pytest.raises(ArtifactError, match=message):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 1000, "vigor1")


def test_output_is_counted_across_segments(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(OLD)
    three = zstd_patch(((0, 0, 2000), FRAME), ((0, 0, 2000), FRAME), ((0, 0, 2000), FRAME))
    (tmp_path / "patch").write_bytes(three)
    with pytest.raises(ArtifactError, match="more than the signed size"):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 5000, "zstd1")
    assert apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 6000, "zstd1")


BIG = b"".join(b"%d line of a module\n" % i for i in range(200_000))  # ~4 MB, compressible
BIG_FRAME = zstd.compress(BIG)


def test_a_segment_decodes_in_pieces_of_at_most_a_chunk() -> None:
    pieces = list(agent_delta._segment(io.BytesIO(BIG_FRAME), None, len(BIG_FRAME), len(BIG)))
    assert b"".join(pieces) == BIG
    assert len(pieces) > 2 and max(map(len, pieces)) <= agent_delta.CHUNK


def test_a_segment_longer_than_it_says_is_refused_as_it_streams() -> None:
    with pytest.raises(ArtifactError, match="produces more than it says"):
        list(agent_delta._segment(io.BytesIO(BIG_FRAME), None, len(BIG_FRAME), len(BIG) // 2))


def test_a_multi_chunk_round_trip(tmp_path: Path) -> None:
    roundtrip(tmp_path, BIG, BIG.replace(b"100 line", b"100 lines"))


def test_the_agent_refuses_a_window_larger_than_it_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = edited_tar_like()
    roundtrip(tmp_path, old, new)  # a window of 2**19: fine for the real limit
    monkeypatch.setattr(agent_delta, "WINDOW_LOG_MAX", 12)
    with pytest.raises(ArtifactError, match="could not be applied"):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", len(new), "zstd1")


def test_content_of_a_plain_archive_is_the_archive(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(BIG)
    digest = agent_delta.content_of(tmp_path / "plain", tmp_path / "content")
    assert digest == hashlib.sha256(BIG).hexdigest()
    assert (tmp_path / "content").read_bytes() == BIG


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (ops(b"C" + b"\x80"), "ends in the middle of an instruction"),
        (ops(b"C" + b"\xff" * 10 + b"\x01"), "impossible number"),
        # The largest number a 64-bit offset holds is read, and refused as out of range.
        (ops(b"C" + b"\xff" * 9 + b"\x01" + uvarint(1), b"E"), "outside the installed content"),
        (ops(*[b"I" + uvarint(400) + b"y" * 400] * 3, b"E"), "more than the signed size"),
    ],
    ids=["truncated-number", "number-too-long", "largest-number", "oversize-in-three"],
)
def test_legacy_numbers_and_sizes(tmp_path: Path, patch: bytes, message: str) -> None:
    (tmp_path / "old").write_bytes(b"old content" * 10)
    (tmp_path / "patch").write_bytes(patch)
    with pytest.raises(ArtifactError, match=message):
        apply_delta(tmp_path / "old", tmp_path / "patch", tmp_path / "out", 1000, "vigor1")
