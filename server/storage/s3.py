"""S3 store (boto3): streamed multipart uploads, ranged reads, presigned download URLs.

A write fills one part-sized buffer while it is hashed. A blob smaller than one part goes up in a
single ``put_object`` straight to ``<prefix>blobs/<sha256>`` at ``commit``, when its digest is known.
A larger one streams part by part into a multipart upload at ``<prefix>tmp/<uuid>``; ``commit``
completes it, copies it server-side to ``<prefix>blobs/<sha256>`` unless that blob already exists,
and deletes the temporary key. The copy is one ``copy_object`` up to S3's single-copy limit
(5 GiB) and an explicit ``upload_part_copy`` loop above it (not boto3's managed copy, which some
S3 implementations answer without the part ETags it expects). So a blob only ever appears under
its digest complete, and memory holds about one part whatever the size.

``abort`` (and any failure) aborts the multipart upload and deletes the temporary key. When the
backend is unreachable even that cannot happen: ``sweep_incomplete`` (``vigor gc``) aborts the
multipart uploads and deletes the temporary keys left under the prefix once they are old enough;
a bucket lifecycle rule on ``<prefix>tmp/`` does the same without Vigor.

Every exception raised while talking to S3 stops here and becomes a ``StorageError`` (or
``BlobNotFoundError``): botocore's, and also the ``KeyError``/``ValueError`` a server with
unexpected answers provokes. Each one counts in ``vigor_storage_failures_total{operation}``.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.storage.base import (
    CHUNK_SIZE,
    SHA256_HEX,
    BlobNotFoundError,
    DigestMismatchError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    Sweep,
    WriteMeter,
    check_digest,
    check_range,
    content_disposition,
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
# Anything an S3 call raises: botocore's errors, and the KeyError/ValueError/OSError of an answer
# shaped unlike AWS's. A StorageError raised inside is passed on as it is (see _translate).
BACKEND_ERRORS = (Exception,)
SINGLE_COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject; larger objects are copied in parts
COPY_PART_SIZE = 512 * 1024 * 1024  # parts of a multipart copy (server-side: no bytes pass here)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, what: str) -> StorageError:
    """The ``StorageError`` for a failed S3 call (``server.metrics.MeteredStore`` counts it)."""
    if isinstance(exc, StorageError):
        return exc  # already translated deeper down
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        return StorageError(f"S3 {what} failed: {code} {message}".strip())
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 {what} failed: {exc}")
    return StorageError(f"S3 {what} failed: unexpected answer ({type(exc).__name__}: {exc})")


def _older(moment: object, cutoff: datetime) -> bool:
    """Whether an S3 timestamp is before ``cutoff`` (a missing or naive one counts as old)."""
    if not isinstance(moment, datetime):
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment < cutoff


def _etag(answer: Any, *path: str) -> str:
    """The ``ETag`` under ``path`` in an S3 answer; a server that leaves it out fails here."""
    value = answer
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        # Not a StorageError yet: the caller's _translate counts it as the failure it is.
        raise ValueError(f"the S3 server's answer has no ETag at {'.'.join(path)}")
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

    def __init__(
        self, store: S3Store, max_size: int | None, expected_sha256: str | None = None
    ) -> None:
        self._store = store
        self._meter = WriteMeter(max_size, expected_sha256)
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
            self._parts.append({"PartNumber": number, "ETag": _etag(answer, "ETag")})
        except BACKEND_ERRORS as exc:
            self.abort()
            raise _translate(exc, "upload") from exc

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
        try:
            blob = self._meter.final()
        except DigestMismatchError:
            self.abort()
            raise
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
                store.copy_key(self._temp_key, final_key, blob.size)
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
        self.single_copy_limit = SINGLE_COPY_LIMIT
        self.copy_part_size = COPY_PART_SIZE
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

    def copy_key(self, source: str, target: str, size: int) -> None:
        """Copy object ``source`` (``size`` bytes) to ``target`` inside the bucket, server-side.

        One ``copy_object`` up to ``SINGLE_COPY_LIMIT``; above it a multipart upload whose parts
        are ``upload_part_copy`` ranges, aborted if any step fails. Raises ``StorageError``.
        """
        client, bucket = self.client, self.bucket
        origin: Any = {"Bucket": bucket, "Key": source}
        if size <= self.single_copy_limit:
            try:
                client.copy_object(Bucket=bucket, Key=target, CopySource=origin)
            except BACKEND_ERRORS as exc:
                raise _translate(exc, "copy") from exc
            return
        upload_id: str | None = None
        try:
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=target)["UploadId"]
            parts: list[CompletedPartTypeDef] = []
            for number, start in enumerate(range(0, size, self.copy_part_size), start=1):
                end = min(start + self.copy_part_size, size) - 1
                answer = client.upload_part_copy(
                    Bucket=bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=origin,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append(
                    {"PartNumber": number, "ETag": _etag(answer, "CopyPartResult", "ETag")}
                )
            client.complete_multipart_upload(
                Bucket=bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BACKEND_ERRORS as exc:
            if upload_id is not None:
                with contextlib.suppress(Exception):  # else sweep_incomplete finds it later
                    client.abort_multipart_upload(Bucket=bucket, Key=target, UploadId=upload_id)
            raise _translate(exc, "copy") from exc

    def _open_uploads(self, prefix: str) -> Iterator[Any]:
        """The multipart uploads in progress under ``prefix``."""
        try:
            for listing in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                yield from listing.get("Uploads", [])
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                return  # rclone's answer when there is none
            raise

    def sweep_incomplete(self, older_than_seconds: float, *, dry_run: bool = False) -> Sweep:
        """Abort the multipart uploads and delete the temporary objects under ``<prefix>tmp/``
        that were started more than ``older_than_seconds`` ago (crashed or cut-off uploads).

        A live upload is younger than any sensible threshold (a day by default), so only the
        abandoned ones go; ``dry_run`` only counts them. Raises ``StorageError``.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        temp = f"{self.prefix}tmp/"
        uploads = objects = 0
        client, bucket = self.client, self.bucket
        try:
            for upload in self._open_uploads(temp):
                if upload["Key"].startswith(temp) and _older(upload.get("Initiated"), cutoff):
                    if not dry_run:
                        client.abort_multipart_upload(
                            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    uploads += 1
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=temp
            ):
                for item in page.get("Contents", []):
                    if _older(item.get("LastModified"), cutoff):
                        if not dry_run:
                            client.delete_object(Bucket=bucket, Key=item["Key"])
                        objects += 1
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "sweep") from exc
        return Sweep(uploads=uploads, temporary=objects)

    def writer(self, max_size: int | None = None, expected_sha256: str | None = None) -> _S3Writer:
        return _S3Writer(self, max_size, expected_sha256)

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        return copy_into(self, stream, max_size)

    def _head(self, digest: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.key_for(digest)))
        except ClientError as exc:
            if _error_code(exc) in MISSING:
                return None
            raise _translate(exc, "lookup") from exc
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "lookup") from exc

    def exists(self, digest: str) -> bool:
        return self._head(digest) is not None

    def size(self, digest: str) -> int:
        head = self._head(digest)
        if head is None:
            raise BlobNotFoundError(digest)
        try:
            return int(head["ContentLength"])
        except BACKEND_ERRORS as exc:
            raise _translate(exc, "lookup") from exc

    def _body(self, digest: str, **extra: Any) -> _BodyReader:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key_for(digest), **extra)
        except ClientError as exc:
            if _error_code(exc) in MISSING:
                raise BlobNotFoundError(digest) from None
            raise _translate(exc, "read") from exc
        except BACKEND_ERRORS as exc:
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
