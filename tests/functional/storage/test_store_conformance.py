"""One conformance suite for every ArtifactStore: local directory and S3 over HTTP."""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from server.storage.base import (
    ArtifactStore,
    BlobNotFoundError,
    SizeLimitError,
    StorageError,
    copy_into,
)
from server.storage.local import LocalStore
from server.storage.s3 import S3Store
from tests.common.s3server import S3Server

MIB = 1024 * 1024


def leftovers(store: ArtifactStore) -> list[str]:
    """Anything a failed write could leave behind: temp files, temp keys, open multipart uploads."""
    if isinstance(store, LocalStore):
        return [p.name for p in store.temp_dir.glob("*")] if store.temp_dir.exists() else []
    assert isinstance(store, S3Store)
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    objects = store.client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}tmp/").get(
        "Contents", []
    )
    return [u["Key"] for u in uploads] + [o["Key"] for o in objects]


@pytest.mark.parametrize("size", [1, 1000, 12 * MIB + 7], ids=["one-byte", "small", "multipart"])
def test_round_trip(store: ArtifactStore, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    blob = store.put_stream(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == size
    assert store.exists(blob.sha256)
    assert store.size(blob.sha256) == size
    with store.open(blob.sha256) as handle:
        assert handle.read() == data
    assert list(store.digests()) == [blob.sha256]
    assert leftovers(store) == []


def test_equal_bytes_are_stored_once(store: ArtifactStore) -> None:
    first = store.put_stream(io.BytesIO(b"same"))
    second = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert list(store.digests()) == [first.sha256]


@pytest.mark.parametrize(("start", "end"), [(0, 0), (99, 99), (10, 20), (0, 99), (50, 500)])
def test_read_range(store: ArtifactStore, start: int, end: int) -> None:
    data = bytes(range(100))
    blob = store.put_stream(io.BytesIO(data))
    assert b"".join(store.read_range(blob.sha256, start, end)) == data[start : end + 1]


def test_missing_blob(store: ArtifactStore) -> None:
    digest = "0" * 64
    assert not store.exists(digest)
    with pytest.raises(BlobNotFoundError):
        store.size(digest)
    with pytest.raises(BlobNotFoundError):
        store.open(digest)
    with pytest.raises(BlobNotFoundError):
        b"".join(store.read_range(digest, 0, 1))
    store.delete(digest)  # deleting a missing blob is fine


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "A" * 64, "abc", "0" * 63 + "/", "0" * 64 + "\n"]
)
def test_names_that_are_not_digests_are_refused(store: ArtifactStore, name: str) -> None:
    for call in (store.exists, store.size, store.open, store.delete):
        with pytest.raises(StorageError):
            call(name)


def test_delete(store: ArtifactStore) -> None:
    blob = store.put_stream(io.BytesIO(b"bye"))
    store.delete(blob.sha256)
    assert not store.exists(blob.sha256)
    assert list(store.digests()) == []


def test_size_limit_leaves_nothing(store: ArtifactStore) -> None:
    with pytest.raises(SizeLimitError):
        store.put_stream(io.BytesIO(b"x" * (6 * MIB)), max_size=6 * MIB - 1)
    assert list(store.digests()) == []
    assert leftovers(store) == []


def test_abort_leaves_nothing(store: ArtifactStore) -> None:
    writer = store.writer()
    writer.write(b"y" * (6 * MIB))  # past one part on S3: a multipart upload is open
    writer.abort()
    assert list(store.digests()) == []
    assert leftovers(store) == []


class BrokenStream(io.RawIOBase):
    """Yields some bytes, then fails like a dropped connection."""

    def __init__(self, good: int) -> None:
        self.good = good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.good <= 0:
            raise ConnectionResetError("peer went away")
        n = min(self.good, MIB if size < 0 else size)
        self.good -= n
        return b"q" * n


def test_source_failure_mid_copy_leaves_nothing(store: ArtifactStore) -> None:
    with pytest.raises(ConnectionResetError):
        copy_into(store, BrokenStream(7 * MIB))  # type: ignore[arg-type]
    assert list(store.digests()) == []
    assert leftovers(store) == []


def chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    block = b"m" * size
    for _ in range(total // size):
        yield block


def test_memory_stays_bounded_while_streaming(store: ArtifactStore) -> None:
    writer = store.writer()
    tracemalloc.start()
    try:
        for chunk in chunks(120 * MIB):
            writer.write(chunk)
        blob = writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size == 120 * MIB
    assert peak < 24 * MIB, f"peak {peak / MIB:.1f} MiB while streaming 120 MiB"


def test_ping(store: ArtifactStore) -> None:
    store.ping()


def test_local_store_files_are_read_only_and_outside_reach_of_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "r")
    blob = store.put_stream(io.BytesIO(b"data"))
    path = store.local_path(blob.sha256)
    assert path is not None
    assert path.is_relative_to(store.root)
    assert path.stat().st_mode & 0o777 == 0o444
    store.delete(blob.sha256)
    assert not path.exists()


def test_presigned_url_serves_the_bytes_and_is_short_lived(s3_server: S3Server) -> None:
    from urllib.parse import parse_qs, urlsplit

    from tests.functional.storage.conftest import make_s3_store

    store = make_s3_store(s3_server)
    blob = store.put_stream(io.BytesIO(b"presigned bytes"))
    url = store.presigned_url(blob.sha256, 60, filename="app.tar.gz")
    assert url is not None
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"presigned bytes"
        assert "app.tar.gz" in response.headers["Content-Disposition"]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["60"]
    assert "X-Amz-Signature" in query
    # A caller cannot ask for a longer life than the store allows (moto enforces neither
    # expiry nor signatures, so the signed parameters are what is checked).
    capped = store.presigned_url(blob.sha256, 86_400)
    assert capped is not None
    assert parse_qs(urlsplit(capped).query)["X-Amz-Expires"] == [str(store.presign_expiry)]


def test_unreachable_s3_is_a_storage_error_quickly() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store(
        "nowhere",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key="x",
        secret_key="y",
        connect_timeout=0.5,
        max_attempts=1,
    )
    started = time.monotonic()
    with pytest.raises(StorageError):
        store.ping()
    with pytest.raises(StorageError):
        store.put_stream(io.BytesIO(b"x"))
    assert time.monotonic() - started < 10


def test_local_store_refuses_an_unwritable_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalStore(blocker / "releases")
    with pytest.raises(StorageError):
        store.ping()
    with pytest.raises(StorageError):
        store.put_stream(io.BytesIO(b"x"))
