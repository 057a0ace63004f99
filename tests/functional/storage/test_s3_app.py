"""Vigor configured for S3: publishing streams to the bucket; downloads redirect to presigned URLs."""

from __future__ import annotations

import hashlib
import secrets
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.config import Settings
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import (
    app_archive,
    make_customer,
    make_license,
    make_product,
    make_release,
)
from tests.common.s3server import S3Server


def test_publish_check_and_download_through_s3(
    s3_server: S3Server, settings: Settings, tmp_path: Path
) -> None:
    bucket = f"vigor-{uuid.uuid4().hex[:12]}"
    s3_server.make_bucket(bucket)
    s3_settings = settings.with_(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_prefix="prod",
        s3_region=s3_server.region,
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
    )
    with vigor_app(s3_settings) as app:
        services: Services = app.extensions["vigor"]
        client = app.test_client()
        assert client.get("/healthz").get_json()["storage"] == "ok"

        make_product(services)
        make_release(services, tmp_path, "1.1.0")
        today = datetime.now(UTC).date()
        make_customer(
            services,
            "initech",
            ("maintenance", today - timedelta(days=10), today + timedelta(days=100)),
        )
        key = make_license(services, "initech")
        assert list(services.store.digests()) == [hashlib.sha256(app_archive("1.1.0")).hexdigest()]

        check = client.post(
            "/api/v1/check",
            headers={"Authorization": f"License {key}"},
            json={
                "product": "acme-erp",
                "version": "1.0.0",
                "platform": "linux-x86_64",
                "installation_id": "s3-installation-0001",
                "nonce": secrets.token_hex(16),
            },
        )
        download = check.get_json()["signed"]["update"]["download"]
        response = client.get(
            download["url"].removeprefix("http://localhost"),
            headers={"Authorization": f"License {key}"},
        )
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location.startswith(s3_server.endpoint_url)
        assert key not in location
        assert "X-Amz-Expires=300&" in location + "&", "a bearer link: 300 s at most"
        with urllib.request.urlopen(location) as fetched:
            data = fetched.read()
        assert hashlib.sha256(data).hexdigest() == download["sha256"]
        assert len(data) == download["size"]
