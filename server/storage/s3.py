"""S3 store (boto3): streamed multipart uploads, ranged reads, presigned download URLs.

Bytes stream to a temporary key in parts while they are hashed; ``commit`` copies the object to
``blobs/<sha256>`` (a managed copy, multipart above 5 GB) and deletes the temporary key, so a
blob only ever appears under its digest once complete. Every botocore error stops here and
becomes a ``StorageError`` (or ``BlobNotFoundError``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.storage.base import (
    BlobNotFoundError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    WriteMeter,
    check_digest,
    copy_into,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
MISSING = {"404", "NoSuchKey", "NotFound"}


def _translate(exc: Exception, what: str) -> StorageError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = exc.response.get("Error", {}).get("Message", "") or code
        return StorageError(f"S3 {what} failed: {code} {message}".strip())
    return StorageError(f"S3 {what} failed: {exc}")


class _S3Writer:
    """Parts go up as they fill; memory holds at most one part."""

    def __init__(self, store: S3Store, max_size: int | None) -> None:
        self._store = store
        self._meter = WriteMeter(max_size)
        self._key = f"{store.prefix}tmp/{uuid.uuid4().hex}"
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise StorageError("write after commit or abort")
        try:
            self._meter.add(data)
        except SizeLimitError:
            self.abort()
            raise
        self._buffer += data
        while len(self._buffer) >= self._store.part_size:
            part = bytes(self._buffer[: self._store.part_size])
            del self._buffer[: self._store.part_size]
            self._send_part(part)
        return len(data)

    def _send_part(self, data: bytes) -> None:
        client = self._store.client
        try:
            if self._upload_id is None:
                created = client.create_multipart_upload(Bucket=self._store.bucket, Key=self._key)
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            answer = client.upload_part(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
            self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        except (ClientError, BotoCoreError) as exc:
            self.abort()
            raise _translate(exc, "upload") from exc

    def commit(self) -> StoredBlob:
        if self._done:
            raise StorageError("commit after commit or abort")
        store, client = self._store, self._store.client
        blob = self._meter.blob()
        digest = blob.sha256
        try:
            if self._upload_id is None:
                client.put_object(Bucket=store.bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
                )
                self._upload_id = None
            self._buffer = bytearray()
            if not store.exists(digest):
                client.copy(
                    {"Bucket": store.bucket, "Key": self._key}, store.bucket, store.key_for(digest)
                )
            client.delete_object(Bucket=store.bucket, Key=self._key)
        except (ClientError, BotoCoreError) as exc:
            self.abort()
            raise _translate(exc, "commit") from exc
        self._done = True
        return blob

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is not None:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=self._key, UploadId=self._upload_id
                )
            client.delete_object(Bucket=bucket, Key=self._key)
        except (ClientError, BotoCoreError):
            pass  # an unreachable store cannot be cleaned now; a lifecycle rule on tmp/ finishes it


class S3Store:
    """Blobs at ``<prefix>blobs/<sha256>`` in one bucket; temporary uploads at ``<prefix>tmp/``."""

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
        part_size: int = 8 * 1024 * 1024,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise StorageError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.bucket = bucket
        self.prefix = (prefix.strip("/") + "/") if prefix.strip("/") else ""
        self.presign_expiry = presign_expiry
        self.part_size = part_size
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint_url else None,
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
        return f"{self.prefix}blobs/{check_digest(digest)}"

    def writer(self, max_size: int | None = None) -> _S3Writer:
        return _S3Writer(self, max_size)

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        return copy_into(self, stream, max_size)

    def _head(self, digest: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.key_for(digest)))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in MISSING:
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

    def _get(self, digest: str, **extra: Any) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key_for(digest), **extra)[
                "Body"
            ]
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in MISSING:
                raise BlobNotFoundError(digest) from None
            raise _translate(exc, "read") from exc
        except BotoCoreError as exc:
            raise _translate(exc, "read") from exc

    def open(self, digest: str) -> BinaryIO:
        body: BinaryIO = self._get(digest)
        return body

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        if start < 0 or end < start:
            raise StorageError(f"bad range {start}-{end}")
        body = self._get(digest, Range=f"bytes={start}-{end}")
        try:
            yield from body.iter_chunks(1024 * 1024)
        except BotoCoreError as exc:
            raise _translate(exc, "read") from exc
        finally:
            body.close()

    def delete(self, digest: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key_for(digest))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "delete") from exc

    def digests(self) -> Iterator[str]:
        prefix = f"{self.prefix}blobs/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    yield item["Key"].removeprefix(prefix)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "listing") from exc

    def local_path(self, digest: str) -> Path | None:
        return None

    def presigned_url(
        self, digest: str, expires_in: int, filename: str | None = None
    ) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key_for(digest)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        try:
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=min(expires_in, self.presign_expiry)
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "presign") from exc

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "health check") from exc
