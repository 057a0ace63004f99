"""One conformance suite for every ArtifactStore: local directory, and S3 over HTTP on two servers
(moto and rclone's ``serve s3``).

Every test in the first part runs against both stores through the ``store`` fixture; the tests
after it cover what only one store has (file modes, temp sweeping, presigned URLs, timeouts).
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from server.storage import make_store
from server.storage.base import (
    ArtifactStore,
    BlobNotFoundError,
    DigestMismatchError,
    SizeLimitError,
    StorageError,
    Sweep,
    copy_into,
)
from server.storage.local import LocalStore
from server.storage.s3 import S3Store, content_disposition
from tests.common.s3server import S3Server, free_port

MIB = 1024 * 1024
PART = 5 * MIB  # the part size the S3 fixture uses
MISSING = "0" * 64
NOT_DIGESTS = [
    "../../etc/passwd",
    "../" + "0" * 61,
    "A" * 64,
    "abc",
    "0" * 63 + "/",
    "0" * 64 + "\n",
    "",
]

SizedCall = Callable[[str], object]


def pattern(size: int) -> bytes:
    """``size`` bytes with a period (251) that no part boundary lines up with."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


def leftovers(store: ArtifactStore) -> list[str]:
    """What a failed write could leave: temp files, temp keys, open multipart uploads."""
    if isinstance(store, LocalStore):
        return sorted(p.name for p in store.temp_dir.glob("*")) if store.temp_dir.exists() else []
    assert isinstance(store, S3Store)
    uploads = list(store._open_uploads(""))
    temp = store.client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}tmp/")
    return [u["Key"] for u in uploads] + [o["Key"] for o in temp.get("Contents", [])]


def assert_empty(store: ArtifactStore) -> None:
    """Nothing stored and nothing half-written."""
    assert list(store.digests()) == []
    assert leftovers(store) == []


# --- every store ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, PART - 1, PART, 4 * PART + 7],
    ids=["empty", "one-byte", "small", "under-one-part", "one-part", "multipart"],
)
def test_round_trip(store: ArtifactStore, size: int) -> None:
    data = pattern(size)
    blob = store.put_stream(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == size
    assert store.exists(blob.sha256)
    assert store.size(blob.sha256) == size
    with store.open(blob.sha256) as handle:
        assert handle.read() == data
    assert list(store.digests()) == [blob.sha256]
    assert leftovers(store) == []


def test_ranges_across_part_boundaries(store: ArtifactStore) -> None:
    size = 2 * PART + 3
    data = pattern(size)
    blob = store.put_stream(io.BytesIO(data))
    for start, end in [(PART - 1, PART), (PART - 2, 2 * PART + 1), (size - 1, size - 1)]:
        assert b"".join(store.read_range(blob.sha256, start, end)) == data[start : end + 1]


def test_open_reads_in_pieces(store: ArtifactStore) -> None:
    data = pattern(3 * MIB + 5)
    blob = store.put_stream(io.BytesIO(data))
    with store.open(blob.sha256) as handle:
        pieces = [handle.read(1), handle.read(MIB), handle.read()]
        assert handle.read() == b""
    assert [len(p) for p in pieces] == [1, MIB, 2 * MIB + 4]
    assert b"".join(pieces) == data


def test_equal_bytes_are_stored_once(store: ArtifactStore) -> None:
    for data in (b"same", pattern(PART + 1)):
        first = store.put_stream(io.BytesIO(data))
        second = store.put_stream(io.BytesIO(data))
        assert first == second
        with store.open(first.sha256) as handle:
            assert handle.read() == data
    assert len(list(store.digests())) == 2
    assert leftovers(store) == []


def test_concurrent_writers_of_equal_bytes(store: ArtifactStore) -> None:
    data = pattern(PART + 11)
    writers = [store.writer(), store.writer()]
    for writer in writers:  # interleaved: both are in flight before either commits
        writer.write(data[:PART])
    for writer in writers:
        writer.write(data[PART:])
    blobs = [writer.commit() for writer in writers]
    assert blobs[0] == blobs[1]
    assert list(store.digests()) == [blobs[0].sha256]
    assert leftovers(store) == []


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (99, 99), (10, 20), (0, 99), (50, 500), (99, 10**12)],
    ids=["first-byte", "last-byte", "middle", "whole", "end-clipped", "end-far-past"],
)
def test_read_range(store: ArtifactStore, start: int, end: int) -> None:
    data = bytes(range(100))
    blob = store.put_stream(io.BytesIO(data))
    assert b"".join(store.read_range(blob.sha256, start, end)) == data[start : end + 1]


@pytest.mark.parametrize(("start", "end"), [(100, 100), (100, 200), (-1, 5), (5, 4)], ids=str)
def test_unsatisfiable_ranges_are_refused(store: ArtifactStore, start: int, end: int) -> None:
    blob = store.put_stream(io.BytesIO(bytes(range(100))))
    with pytest.raises(StorageError):
        store.read_range(blob.sha256, start, end)  # raised by the call, not the first chunk


def test_missing_blob(store: ArtifactStore) -> None:
    assert not store.exists(MISSING)
    with pytest.raises(BlobNotFoundError) as raised:
        store.size(MISSING)
    assert raised.value.digest == MISSING
    with pytest.raises(BlobNotFoundError):
        store.open(MISSING)
    with pytest.raises(BlobNotFoundError):
        store.read_range(MISSING, 0, 1)  # before any iteration: a server can still send 404
    store.delete(MISSING)  # deleting a missing blob is fine


@pytest.mark.parametrize("name", NOT_DIGESTS, ids=repr)
def test_names_that_are_not_digests_are_refused(store: ArtifactStore, name: str) -> None:
    calls: list[SizedCall] = [
        store.exists,
        store.size,
        store.open,
        store.delete,
        store.local_path,
        lambda digest: store.read_range(digest, 0, 1),
        lambda digest: store.presigned_url(digest, 60),
    ]
    for call in calls:
        with pytest.raises(StorageError):
            call(name)


def test_delete_and_digests(store: ArtifactStore) -> None:
    blobs = [store.put_stream(io.BytesIO(data)) for data in (b"one", b"two", b"three")]
    assert sorted(store.digests()) == sorted(blob.sha256 for blob in blobs)
    store.delete(blobs[1].sha256)
    assert not store.exists(blobs[1].sha256)
    assert sorted(store.digests()) == sorted([blobs[0].sha256, blobs[2].sha256])
    with store.open(blobs[0].sha256) as handle:
        assert handle.read() == b"one"


@pytest.mark.parametrize("limit", [10, PART + 1], ids=["small", "past-one-part"])
def test_size_limit_leaves_nothing(store: ArtifactStore, limit: int) -> None:
    with pytest.raises(SizeLimitError):
        store.put_stream(io.BytesIO(pattern(limit + 1)), max_size=limit)
    assert_empty(store)


@pytest.mark.parametrize("size", [100, PART + 1], ids=["small", "past-one-part"])
def test_bytes_not_the_promised_ones_leave_nothing(store: ArtifactStore, size: int) -> None:
    data = pattern(size)
    writer = store.writer(expected_sha256=hashlib.sha256(data[:-1]).hexdigest())
    writer.write(data)
    with pytest.raises(DigestMismatchError) as refused:
        writer.commit()
    assert refused.value.actual == hashlib.sha256(data).hexdigest()
    assert_empty(store)
    promised = store.writer(expected_sha256=hashlib.sha256(data).hexdigest())
    promised.write(data)
    assert promised.commit().sha256 == hashlib.sha256(data).hexdigest()


def test_size_limit_is_inclusive(store: ArtifactStore) -> None:
    blob = store.put_stream(io.BytesIO(b"x" * 10), max_size=10)
    assert blob.size == 10


@pytest.mark.parametrize("size", [100, PART + 1], ids=["small", "past-one-part"])
def test_abort_leaves_nothing(store: ArtifactStore, size: int) -> None:
    writer = store.writer()
    writer.write(pattern(size))  # past one part, S3 has a multipart upload open
    writer.abort()
    writer.abort()  # aborting twice is harmless
    assert_empty(store)
    with pytest.raises(StorageError):
        writer.commit()


def test_a_writer_is_finished_by_commit(store: ArtifactStore) -> None:
    writer = store.writer()
    writer.write(b"done")
    writer.commit()
    writer.abort()  # after commit: a no-op, the blob stays
    with pytest.raises(StorageError):
        writer.write(b"more")
    with pytest.raises(StorageError):
        writer.commit()
    assert len(list(store.digests())) == 1


class BrokenStream(io.RawIOBase):
    """Yields ``good`` bytes, then fails like a dropped connection."""

    def __init__(self, good: int) -> None:
        self.good = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.good <= 0:
            raise ConnectionResetError("peer went away")
        n = min(self.good, len(buffer))
        buffer[:n] = b"q" * n
        self.good -= n
        return n


@pytest.mark.parametrize("good", [1000, PART + MIB], ids=["small", "past-one-part"])
def test_source_failure_mid_copy_leaves_nothing(store: ArtifactStore, good: int) -> None:
    with pytest.raises(ConnectionResetError):
        copy_into(store, BrokenStream(good))  # type: ignore[arg-type]
    assert_empty(store)


def chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    """``total`` bytes in ``size`` chunks, never held at once (distinct chunks: real hashing)."""
    for number in range(total // size):
        yield number.to_bytes(8, "big") * (size // 8)


def test_memory_stays_bounded_while_streaming(store: ArtifactStore) -> None:
    total = 200 * MIB
    expected = hashlib.sha256()
    writer = store.writer()
    tracemalloc.start()
    try:
        for chunk in chunks(total):
            writer.write(chunk)
            expected.update(chunk)
        blob = writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size == total
    assert blob.sha256 == expected.hexdigest()
    assert store.size(blob.sha256) == total
    # About one S3 part (5 MiB here) plus a chunk; the local store holds only the chunk.
    assert peak < 2 * PART + 4 * MIB, f"peak {peak / MIB:.1f} MiB while streaming 200 MiB"
    assert leftovers(store) == []
    # The big blob reads back whole: on S3 it went through a 200 MiB server-side copy.
    stored = hashlib.sha256()
    with store.open(blob.sha256) as handle:
        while piece := handle.read(MIB):
            stored.update(piece)
    assert stored.hexdigest() == blob.sha256


def test_sweep_removes_only_old_unfinished_uploads(
    store: ArtifactStore, request: pytest.FixtureRequest
) -> None:
    kept = store.put_stream(io.BytesIO(pattern(PART + 1)))
    abandoned = store.writer()
    abandoned.write(pattern(PART + 1))  # S3: a multipart upload is open; local: a temp file
    assert leftovers(store) != []
    if request.node.callspec.params["store"] != "moto":  # moto dates every upload 2010-11-10
        assert store.sweep_incomplete(3600) == Sweep()  # younger than an hour: in flight
    assert store.sweep_incomplete(0, dry_run=True).describe(dry_run=True).startswith("would ")
    assert leftovers(store) != []
    swept = store.sweep_incomplete(0)
    assert swept == (Sweep(temporary=1) if isinstance(store, LocalStore) else Sweep(uploads=1))
    assert leftovers(store) == []
    assert list(store.digests()) == [kept.sha256]  # stored blobs are never touched
    assert store.size(kept.sha256) == PART + 1
    abandoned.abort()  # its process would be gone; here the handle still needs closing


def test_ping(store: ArtifactStore) -> None:
    store.ping()


# --- the local store -----------------------------------------------------------------------


def test_local_layout_and_read_only_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "releases")
    blob = store.put_stream(io.BytesIO(b"data"))
    path = store.local_path(blob.sha256)
    digest = blob.sha256
    assert path == store.root / digest[:2] / digest[2:4] / digest
    assert path.stat().st_mode & 0o777 == 0o444
    assert store.presigned_url(digest, 60) is None
    store.put_stream(io.BytesIO(b"data"))  # replacing a read-only copy works
    assert path.read_bytes() == b"data"
    store.delete(digest)  # and so does deleting one
    assert not path.exists()


def test_local_digests_ignore_what_is_not_a_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "releases")
    blob = store.put_stream(io.BytesIO(b"real"))
    misplaced = "f" * 64
    (store.root / "ab" / "cd").mkdir(parents=True)
    (store.root / "ab" / "cd" / misplaced).write_bytes(b"not under its own prefix")
    (store.root / blob.sha256[:2] / blob.sha256[2:4] / "notes.txt").write_text("stray")
    pending = store.writer()
    pending.write(b"in flight")
    assert list(store.digests()) == [blob.sha256]
    pending.abort()


def test_local_sweep_removes_only_old_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "releases")
    assert store.sweep_incomplete(0) == Sweep()  # no temp dir yet
    abandoned = store.writer()
    abandoned.write(b"crashed half way")
    live = store.writer()
    live.write(b"still uploading")
    old = time.time() - 7200
    for path in store.temp_dir.iterdir():
        if path.read_bytes() == b"crashed half way":
            os.utime(path, (old, old))
    assert store.sweep_incomplete(3600) == Sweep(temporary=1)
    assert len(list(store.temp_dir.iterdir())) == 1
    blob = live.commit()
    assert store.exists(blob.sha256)
    assert leftovers(store) == []
    abandoned.abort()  # its process would be gone; here the handle still needs closing


def test_local_store_refuses_an_unusable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalStore(blocker / "releases")
    with pytest.raises(StorageError):
        store.ping()
    with pytest.raises(StorageError):
        store.put_stream(io.BytesIO(b"x"))
    assert list(store.digests()) == []


# --- the S3 store --------------------------------------------------------------------------


def test_presigned_url_downloads_the_bytes(make_s3_store: Callable[..., S3Store]) -> None:
    store = make_s3_store()
    blob = store.put_stream(io.BytesIO(b"presigned bytes"))
    url = store.presigned_url(blob.sha256, 60, filename='app "1.0" café.tar.gz')
    assert url is not None
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"presigned bytes"
        disposition = response.headers["Content-Disposition"]
    assert disposition == content_disposition('app "1.0" café.tar.gz')
    assert 'filename="app _1.0_ caf_.tar.gz"' in disposition
    assert "filename*=UTF-8''app%20%221.0%22%20caf%C3%A9.tar.gz" in disposition


def test_presigned_url_is_short_lived(make_s3_store: Callable[..., S3Store]) -> None:
    # moto serves presigned URLs without checking their signature or expiry, so what is checked
    # here is what S3 enforces: the signed expiry window starts now and is capped by the store.
    store = make_s3_store(presign_expiry=120)
    blob = store.put_stream(io.BytesIO(b"short-lived"))
    for asked, signed in [(1, "1"), (60, "60"), (86_400, "120"), (0, "1")]:
        url = store.presigned_url(blob.sha256, asked)
        assert url is not None
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == [signed]
        assert "X-Amz-Signature" in query
        assert "X-Amz-Credential" in query
        signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60


def test_content_disposition_cannot_be_broken() -> None:
    assert content_disposition("app.tar.gz") == 'attachment; filename="app.tar.gz"'
    header = content_disposition('x"\r\nSet-Cookie: a=b;/\\')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="x___Set-Cookie: a=b___"')


def test_s3_keys_live_under_the_prefix(
    make_s3_store: Callable[..., S3Store], s3_server: S3Server
) -> None:
    store = make_s3_store(prefix="/prod/vigor/")
    small = store.put_stream(io.BytesIO(b"small"))
    large = store.put_stream(io.BytesIO(pattern(PART + 1)))
    listed = s3_server.client().list_objects_v2(Bucket=store.bucket).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == sorted(
        f"prod/vigor/blobs/{blob.sha256}" for blob in (small, large)
    )


def test_s3_sweep_deletes_old_temporary_objects(make_s3_store: Callable[..., S3Store]) -> None:
    store = make_s3_store()
    # What a crash between completing an upload and copying it to its digest leaves.
    store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}tmp/crashed", Body=b"x")
    store.client.put_object(Bucket=store.bucket, Key="elsewhere/tmp/crashed", Body=b"y")
    assert store.sweep_incomplete(3600) == Sweep()
    assert store.sweep_incomplete(0) == Sweep(temporary=1)
    assert leftovers(store) == []
    others = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    assert [o["Key"] for o in others] == ["elsewhere/tmp/crashed"]  # not under the prefix


def test_s3_copies_large_blobs_in_parts(
    make_s3_store: Callable[..., S3Store], s3_server: S3Server
) -> None:
    """Above the single-copy limit (5 GiB on S3; 6 MiB here) the commit copies part by part.
    rclone does not implement UploadPartCopy (its answer has no part ETag): a StorageError, with
    nothing left behind."""
    store = make_s3_store()
    store.single_copy_limit = 6 * MIB
    store.copy_part_size = PART
    data = pattern(3 * PART + 17)
    if s3_server.kind == "rclone":
        with pytest.raises(StorageError, match="no ETag"):
            store.put_stream(io.BytesIO(data))
        assert_empty(store)
        return
    blob = store.put_stream(io.BytesIO(data))
    with store.open(blob.sha256) as handle:
        assert handle.read() == data
    assert leftovers(store) == []


class QuirkyS3(BaseHTTPRequestHandler):
    """Answers every request 200 with an empty XML document: no ETag, no UploadId, no size."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"" if self.command == "HEAD" else b"<?xml version='1.0'?><Result/>"
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()


def test_unexpected_answers_become_storage_errors() -> None:
    """A server whose answers lack what AWS sends (a KeyError or ValueError in the client's
    hands) fails with StorageError like an outage, never with the raw exception."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuirkyS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = S3Store(
            "quirky",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            region="us-east-1",
            access_key="x",
            secret_key="y",
            part_size=PART,
            max_attempts=1,
        )
        digest = hashlib.sha256(b"x").hexdigest()
        calls: list[Callable[[], object]] = [
            lambda: store.size(digest),
            lambda: store.put_stream(io.BytesIO(pattern(PART + 1))),
        ]
        for call in calls:
            with pytest.raises(StorageError):
                call()
    finally:
        server.shutdown()
        server.server_close()


def test_s3_refuses_parts_smaller_than_s3_allows() -> None:
    with pytest.raises(StorageError):
        S3Store("bucket", part_size=MIB)


def test_missing_bucket_is_a_storage_error(
    make_s3_store: Callable[..., S3Store], s3_server: S3Server
) -> None:
    store = make_s3_store()
    gone = S3Store(
        store.bucket + "-gone",
        endpoint_url=store.client.meta.endpoint_url,
        **s3_server.credentials(),
    )
    with pytest.raises(StorageError):
        gone.ping()
    with pytest.raises(StorageError):
        gone.put_stream(io.BytesIO(b"x"))
    with pytest.raises(StorageError):
        list(gone.digests())


def test_unreachable_s3_fails_quickly_with_storage_errors() -> None:
    store = S3Store(
        "nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        region="us-east-1",
        access_key="x",
        secret_key="y",
        connect_timeout=0.5,
        max_attempts=1,
    )
    started = time.monotonic()
    calls: list[Callable[[], object]] = [
        store.ping,
        lambda: store.exists(MISSING),
        lambda: store.open(MISSING),
        lambda: store.read_range(MISSING, 0, 1),
        lambda: list(store.digests()),
        lambda: store.delete(MISSING),
        lambda: store.put_stream(io.BytesIO(b"x")),
        lambda: store.put_stream(io.BytesIO(pattern(PART + 1))),
    ]
    for call in calls:
        with pytest.raises(StorageError):
            call()
    assert time.monotonic() - started < 10


def test_s3_read_failures_become_storage_errors(make_s3_store: Callable[..., S3Store]) -> None:
    """A connection that stalls mid-body surfaces as ``StorageError``, not a botocore error."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    stop = threading.Event()

    def serve_half_a_body() -> None:
        conn, _ = silent.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: "x"\r\n\r\n' + b"a" * 10
            )
            stop.wait(5)

    server = threading.Thread(target=serve_half_a_body, daemon=True)
    server.start()
    try:
        store = S3Store(
            "stalled",
            endpoint_url=f"http://127.0.0.1:{port}",
            region="us-east-1",
            access_key="x",
            secret_key="y",
            read_timeout=0.5,
            max_attempts=1,
        )
        with pytest.raises(StorageError), store.open(MISSING) as handle:
            handle.read()
    finally:
        stop.set()
        server.join(5)
        silent.close()


def test_make_store_builds_either_store(tmp_path: Path, s3_server: S3Server) -> None:
    local = make_store("local", root=tmp_path / "releases")
    assert isinstance(local, LocalStore)
    assert local.root == (tmp_path / "releases").resolve()
    bucket = s3_server.make_bucket()
    remote = make_store(
        "s3", bucket=bucket, endpoint_url=s3_server.endpoint_url, **s3_server.credentials()
    )
    assert isinstance(remote, S3Store)
    remote.ping()
    s3_server.drop_bucket(bucket)
    with pytest.raises(StorageError):
        make_store("ftp")
