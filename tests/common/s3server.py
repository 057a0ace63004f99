"""An S3-compatible server over HTTP for tests: moto's standalone server as a real subprocess.

    with S3Server() as server:
        bucket = server.make_bucket()
        store = S3Store(bucket, endpoint_url=server.endpoint_url, **server.credentials())

Each server keeps its objects in its own memory; ``drop_bucket`` gives it back after a test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

START_TIMEOUT = 30.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before moto binds it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``python -m moto.server`` on a free loopback port; credentials are moto's dummies."""

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
        """Keyword arguments for ``S3Store``: region and the dummy keys."""
        return {"region": self.region, "access_key": self.access_key, "secret_key": self.secret_key}

    def start(self) -> None:
        """Start moto and wait until it answers; raise ``RuntimeError`` with its log if not."""
        log = ""
        for _ in range(START_ATTEMPTS):
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self.port = free_port()
            self.endpoint_url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
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
        raise RuntimeError(f"moto server did not start:\n{log}")

    def _wait_until_up(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def client(self) -> S3Client:
        """A plain boto3 client on this server (for setting up and inspecting buckets)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
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
        uploads: Any = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server process (TERM, then KILL after 10 s)."""
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
