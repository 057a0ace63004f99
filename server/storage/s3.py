"""S3 store (boto3): streamed multipart uploads, ranged reads, presigned download URLs.

A write fills one part-sized buffer while it is hashed. A blob smaller than one part goes up in a
single ``put_object`` straight to ``<prefix>blobs/<sha256>`` at ``commit``, when its digest is known.
A larger one streams part by part into a multipart upload at ``<prefix>tmp/<uuid>``; ``commit``
completes it, copies it to ``<prefix>blobs/<sha256>`` with the managed copy (multipart above
5 GB) unless that blob already exists, and deletes the temporary key. So a blob only ever appears
under its digest complete, and memory holds about one part whatever the size.

``abort`` (and any failure) aborts the multipart upload and deletes the temporary key. When the
backend is unreachable even that cannot happen: give the bucket a lifecycle rule that expires
``<prefix>tmp/`` objects and aborts incomplete multipart uploads after a day.

Every botocore error stops here and becomes a ``StorageError`` (or ``BlobNotFoundError``).
"""

from __future__ import annotations

import io
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.storage.base import (
    CHUNK_SIZE,
    SHA256_HEX,
    BlobNotFoundError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    WriteMeter,
    check_digest,
    check_range,
    copy_into,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MISSING = {"404", "NoSuchKey", "NotFound"}
BACKEND_ERRORS = (ClientError, BotoCoreError)
# Server-side copies move no bytes through this process: large parts mean fewer requests.
COPY_CONFIG = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, what: str) -> StorageError:
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        return StorageError(f"S3 {what} failed: {code} {message}".strip())
    return StorageError(f"S3 {what} failed: {exc}")


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that no filename can break (RFC 6266 ``filename*``)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\/;' else "_" for c in filename
    )
    value = f'attachment; filename="{fallback or "download"}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"
    return value


def _no_copy(buffer: bytearray) -> bytes:
    """Hand botocore the buffer itself: it accepts a bytearray (its validator says so), the stubs
    only say bytes, and a ``bytes()`` copy would double the memory an upload holds."""
    return cast(bytes, buffer)


class _BodyReader(io.RawIOBase):
    """A ``get_object`` body whose read failures are ``StorageError``s, not botocore's."""

    def __init__(self, body: StreamingBody) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(target))
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "read") from exc
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _S3Writer:
    """Fills one part-sized buffer; each full part goes up before more is accepted."""

    def __init__(self, store: S3Store, max_size: int | None) -> None:
        self._store = store
        self._meter = WriteMeter(max_size)
        self._temp_key = f"{store.prefix}tmp/{uuid.uuid4().hex}"
        self._buffer: bytearray | None = None  # allocated on the first write
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._temp_exists = False
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise StorageError("write after commit or abort")
        view = memoryview(data).cast("B")
        try:
            self._meter.add(view)
        except SizeLimitError:
            self.abort()
            raise
        part_size = self._store.part_size
        while view:
            if self._buffer is None:
                self._buffer = bytearray(part_size)
            taken = view[: part_size - self._filled]
            self._buffer[self._filled : self._filled + len(taken)] = taken
            self._filled += len(taken)
            view = view[len(taken) :]
            if self._filled == part_size:
                self._send_part(self._buffer)
                self._filled = 0  # the same buffer takes the next part: S3 has the bytes now
        return len(data)

    def _send_part(self, body: bytearray) -> None:
        store, client = self._store, self._store.client
        try:
            if self._upload_id is None:
                created = client.create_multipart_upload(Bucket=store.bucket, Key=self._temp_key)
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            answer = client.upload_part(
                Bucket=store.bucket,
                Key=self._temp_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=_no_copy(body),
            )
        except BACKEND_ERRORS as exc:
            self.abort()
            raise _translate(exc, "upload") from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _tail(self) -> bytearray:
        """The buffered bytes not yet sent (the last part, or the whole of a small blob)."""
        if self._buffer is None:
            return bytearray()
        del self._buffer[self._filled :]
        return self._buffer

    def commit(self) -> StoredBlob:
        if self._done:
            raise StorageError("commit after commit or abort")
        store, client = self._store, self._store.client
        blob = self._meter.blob()
        final_key = store.key_for(blob.sha256)
        try:
            if self._upload_id is None:
                # Smaller than one part: the digest is known, so the bytes go where they belong.
                if not store.exists(blob.sha256):
                    client.put_object(
                        Bucket=store.bucket, Key=final_key, Body=_no_copy(self._tail())
                    )
            else:
                if self._filled:
                    self._send_part(self._tail())
                self._buffer = None
                if store.exists(blob.sha256):
                    self.abort()  # equal bytes are stored already: drop the upload unfinished
                    return blob
                client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self._temp_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self._upload_id, self._temp_exists = None, True
                client.copy(
                    {"Bucket": store.bucket, "Key": self._temp_key},
                    store.bucket,
                    final_key,
                    Config=COPY_CONFIG,
                )
                client.delete_object(Bucket=store.bucket, Key=self._temp_key)
                self._temp_exists = False
        except BACKEND_ERRORS as exc:
            self.abort()
            raise _translate(exc, "commit") from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._buffer = None
        return blob

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = None
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is not None:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=self._temp_key, UploadId=self._upload_id
                )
            if self._temp_exists:
                client.delete_object(Bucket=bucket, Key=self._temp_key)
        except BACKEND_ERRORS:
            pass  # unreachable now: the bucket's lifecycle rule on tmp/ finishes the job


class S3Store:
    """Blobs at ``<prefix>blobs/<sha256>`` in one bucket; temporary uploads at ``<prefix>tmp/``.

    Args:
        bucket: an existing bucket.
        prefix: a key prefix, so several deployments can share a bucket.
        region, endpoint_url: where the bucket is; ``endpoint_url`` for S3-compatible servers.
        access_key, secret_key: credentials; None uses boto3's chain (instance role, ...).
        presign_expiry: the longest life, in seconds, a presigned download URL may have.
        part_size: bytes per multipart part, and so about the memory one upload holds.
        connect_timeout, read_timeout, max_attempts: how long an unreachable backend may stall
            a request before ``StorageError``.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        presign_expiry: int = 300,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise StorageError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if not bucket:
            raise StorageError("an S3 bucket name is required")
        self.bucket = bucket
        self.prefix = (prefix.strip("/") + "/") if prefix.strip("/") else ""
        self.presign_expiry = presign_expiry
        self.part_size = part_size
        options: dict[str, Any] = {}
        if endpoint_url:
            # S3-compatible servers want path-style addressing, and many refuse the checksum
            # trailers botocore adds by default; the SHA-256 we compute is the integrity check.
            options = {
                "s3": {"addressing_style": "path"},
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            signature_version="s3v4",
            **options,
        )
        self.client: S3Client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    def key_for(self, digest: str) -> str:
        """The object key of blob ``digest``. Raises ``StorageError`` for a non-digest."""
        return f"{self.prefix}blobs/{check_digest(digest)}"

    def writer(self, max_size: int | None = None) -> _S3Writer:
        return _S3Writer(self, max_size)

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        return copy_into(self, stream, max_size)

    def _head(self, digest: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.key_for(digest)))
        except ClientError as exc:
            if _error_code(exc) in MISSING:
                return None
            raise _translate(exc, "lookup") from exc
        except BotoCoreError as exc:
            raise _translate(exc, "lookup") from exc

    def exists(self, digest: str) -> bool:
        return self._head(digest) is not None

    def size(self, digest: str) -> int:
        head = self._head(digest)
        if head is None:
            raise BlobNotFoundError(digest)
        return int(head["ContentLength"])

    def _body(self, digest: str, **extra: Any) -> _BodyReader:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key_for(digest), **extra)
        except ClientError as exc:
            if _error_code(exc) in MISSING:
                raise BlobNotFoundError(digest) from None
            raise _translate(exc, "read") from exc
        except BotoCoreError as exc:
            raise _translate(exc, "read") from exc
        return _BodyReader(answer["Body"])

    def open(self, digest: str) -> BinaryIO:
        return io.BufferedReader(self._body(digest), buffer_size=CHUNK_SIZE)

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        check_range(start, end)
        # S3 clips an end past the last byte and answers 416 (a StorageError) for a start past it.
        return self._chunks(self._body(digest, Range=f"bytes={start}-{end}"))

    @staticmethod
    def _chunks(reader: _BodyReader) -> Iterator[bytes]:
        with reader:
            while chunk := reader.read(CHUNK_SIZE):
                yield chunk

    def delete(self, digest: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key_for(digest))
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "delete") from exc

    def digests(self) -> Iterator[str]:
        prefix = f"{self.prefix}blobs/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    name = item["Key"].removeprefix(prefix)
                    if SHA256_HEX.match(name):
                        yield name
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "listing") from exc

    def local_path(self, digest: str) -> Path | None:
        check_digest(digest)
        return None

    def presigned_url(
        self, digest: str, expires_in: int, filename: str | None = None
    ) -> str | None:
        """A GET URL for the blob, valid for ``expires_in`` seconds capped at ``presign_expiry``."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key_for(digest)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        expiry = max(1, min(expires_in, self.presign_expiry))
        try:
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expiry)
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "presign") from exc

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "health check") from exc
