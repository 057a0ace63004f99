"""The ``store`` fixture: every store implementation, so each test runs against all of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage.base import ArtifactStore
from server.storage.local import LocalStore
from server.storage.s3 import S3Store
from tests.common.s3server import S3Server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


def make_s3_store(server: S3Server, **options: object) -> S3Store:
    bucket = f"vigor-{uuid.uuid4().hex[:12]}"
    server.make_bucket(bucket)
    return S3Store(
        bucket,
        prefix="artifacts",
        region=server.region,
        endpoint_url=server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
        part_size=5 * 1024 * 1024,
        **options,
    )  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "releases")
    return make_s3_store(request.getfixturevalue("s3_server"))
