"""The ``store`` fixture: every store implementation, so each test runs against all of them.

S3 runs against two servers: moto, and rclone's ``serve s3`` (another implementation, with its
own answers to the same calls). ``s3_server`` is either, so S3-only tests run on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.storage.base import ArtifactStore
from server.storage.local import LocalStore
from server.storage.s3 import S3Store
from tests.common.s3server import RcloneS3Server, S3Server

MIB = 1024 * 1024
TEST_PART_SIZE = 5 * MIB  # S3's minimum: multipart uploads start early and stay quick
S3_SERVERS = ["moto", "rclone"]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def rclone_server() -> Iterator[S3Server]:
    with RcloneS3Server() as server:
        yield server


@pytest.fixture(scope="session", params=S3_SERVERS)
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    server: S3Server = request.getfixturevalue(f"{request.param}_server")
    return server


class BucketMaker:
    """Builds S3 stores on fresh buckets of one server; ``drop`` gives their bytes back."""

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.buckets: list[str] = []

    def __call__(self, **options: Any) -> S3Store:
        bucket = self.server.make_bucket()
        self.buckets.append(bucket)
        settings: dict[str, Any] = {
            "prefix": "artifacts",
            "endpoint_url": self.server.endpoint_url,
            "part_size": TEST_PART_SIZE,
            **self.server.credentials(),
            **options,
        }
        return S3Store(bucket, **settings)

    def drop(self) -> None:
        for bucket in self.buckets:
            self.server.drop_bucket(bucket)


@pytest.fixture
def make_s3_store(s3_server: S3Server) -> Iterator[Callable[..., S3Store]]:
    """Build S3 stores on fresh buckets, dropped (with their bytes) after the test."""
    maker = BucketMaker(s3_server)
    yield maker
    maker.drop()


@pytest.fixture(params=["local", *S3_SERVERS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "releases")
        return
    maker = BucketMaker(request.getfixturevalue(f"{request.param}_server"))
    yield maker()
    maker.drop()
