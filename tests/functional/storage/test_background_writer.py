"""The background writer in front of every store: the same blob, the same refusals, nothing left."""

from __future__ import annotations

import hashlib

import pytest

from server.storage.background import BackgroundWriter
from server.storage.base import ArtifactStore, SizeLimitError, StorageError, StoredBlob
from tests.functional.storage.test_store_conformance import PART, assert_empty, pattern


def test_chunks_arrive_in_order_and_the_blob_is_committed(store: ArtifactStore) -> None:
    data = pattern(2 * PART + 12345)
    writer = BackgroundWriter(store.writer(), depth=2)
    for start in range(0, len(data), 100_000):  # more chunks than the queue holds
        writer.write(data[start : start + 100_000])
    blob = writer.commit()
    assert blob == StoredBlob(hashlib.sha256(data).hexdigest(), len(data))
    with store.open(blob.sha256) as handle:
        assert handle.read() == data


def test_size_limit_is_raised_in_the_callers_thread_and_leaves_nothing(
    store: ArtifactStore,
) -> None:
    writer = BackgroundWriter(store.writer(max_size=PART), depth=2)

    def write_past_the_limit() -> None:
        for _ in range(20):  # the thread refuses the second chunk; a later write says so
            writer.write(pattern(PART // 2 + 1))
        writer.flush()

    with pytest.raises(SizeLimitError):
        write_past_the_limit()
    writer.abort()
    assert_empty(store)
    with pytest.raises(SizeLimitError):
        writer.commit()


def test_abort_mid_write_leaves_nothing(store: ArtifactStore) -> None:
    writer = BackgroundWriter(store.writer())
    writer.write(pattern(PART + 1))
    writer.abort()
    writer.abort()  # aborting twice is harmless
    assert_empty(store)
    with pytest.raises(StorageError):
        writer.write(b"more")


class FailingWriter:
    """A store writer whose disk fails on the second chunk."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> int:
        if self.chunks:
            raise StorageError("writing failed: No space left on device")
        self.chunks.append(data)
        return len(data)

    def commit(self) -> StoredBlob:  # pragma: no cover - never reached
        raise AssertionError("committed after a failure")

    def abort(self) -> None:
        self.aborted = True


def test_a_store_failure_reaches_commit_and_abort_still_cleans_up() -> None:
    failing = FailingWriter()
    writer = BackgroundWriter(failing)
    writer.write(b"first")
    writer.write(b"second")
    with pytest.raises(StorageError, match="No space left"):
        writer.commit()
    writer.abort()
    assert failing.chunks == [b"first"]
    assert failing.aborted
