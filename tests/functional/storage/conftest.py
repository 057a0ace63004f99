"""The ``store`` fixture: every store implementation, so each test runs against all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.storage.base import ArtifactStore
from server.storage.local import LocalStore
from server.storage.s3 import S3Store
from tests.common.s3server import S3Server

MIB = 1024 * 1024
TEST_PART_SIZE = 5 * MIB  # S3's minimum: multipart uploads start early and stay quick


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def make_s3_store(s3_server: S3Server) -> Iterator[Callable[..., S3Store]]:
    """Build S3 stores on fresh buckets, dropped (with their bytes) after the test."""
    buckets: list[str] = []

    def make(**options: Any) -> S3Store:
        bucket = s3_server.make_bucket()
        buckets.append(bucket)
        settings: dict[str, Any] = {
            "prefix": "artifacts",
            "endpoint_url": s3_server.endpoint_url,
            "part_size": TEST_PART_SIZE,
            **s3_server.credentials(),
            **options,
        }
        return S3Store(bucket, **settings)

    yield make
    for bucket in buckets:
        s3_server.drop_bucket(bucket)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "releases")
    make: Callable[..., S3Store] = request.getfixturevalue("make_s3_store")
    return make()
