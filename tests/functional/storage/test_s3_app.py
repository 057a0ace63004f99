"""Vigor configured for S3: publishing streams to the bucket; downloads redirect to presigned URLs."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from server.config import Settings
from server.domain import api_tokens, users
from server.domain.models import Release
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import (
    app_archive,
    make_covered_license,
    make_product,
)
from tests.common.s3server import S3Server, free_port

PASSWORD = "correct horse battery"


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

        key = make_covered_license(services, tmp_path)
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


# --- when the store fails, and how the bytes are served ------------------------------------


def s3_app_settings(
    settings: Settings, endpoint_url: str, bucket: str, **extra: object
) -> Settings:
    return settings.with_(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_prefix="prod",
        s3_region="us-east-1",
        s3_endpoint_url=endpoint_url,
        s3_access_key="testing",
        s3_secret_key="testing",
        **extra,
    )


def release_count(services: Services) -> int:
    with services.db.sessions() as s:
        return len(s.scalars(select(Release.id)).all())


SIZES = {"small": 1000, "past-one-part": 9 * 1024 * 1024}  # the store's parts are 8 MiB


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_an_unreachable_store_is_a_503_everywhere(settings: Settings, size: int) -> None:
    """One code for every storage failure: the API's publish (at commit for a small file, while
    the body streams for a larger one), the upload form, and a streamed download."""
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: S3 is down
    with vigor_app(s3_app_settings(settings, nowhere, "gone", downloads="stream")) as app:
        services: Services = app.extensions["vigor"]
        make_product(services)
        with services.db.sessions() as s:
            _, secret = api_tokens.create_token(s, "ci", role="publisher", actor="test")
            users.add_user(s, "pub@example.com", PASSWORD, role="publisher", actor="test")
        client = app.test_client()

        answer = client.post(
            "/api/v1/admin/releases",
            headers={"Authorization": f"Bearer {secret}"},
            **multipart(
                {
                    "product": "acme-erp",
                    "version": "2.0.0",
                    "kind": "update",
                    "artifact.linux-x86_64": (io.BytesIO(b"a" * size), "acme.tar.gz"),
                }
            ),
        )
        assert answer.status_code == 503
        assert answer.get_json()["error"]["code"] == "storage_unavailable"
        assert int(answer.headers["Retry-After"]) > 0

        login = csrf_of(client, "/admin/login")
        client.post(
            "/admin/login",
            data={"email": "pub@example.com", "password": PASSWORD, "csrf_token": login},
        )
        form = client.post(
            "/admin/releases/new",
            **multipart(
                {
                    "csrf_token": csrf_of(client, "/admin/releases/new"),
                    "product": "acme-erp",
                    "version": "2.0.0",
                    "kind": "update",
                    "channel": "stable",
                    "platform.artifact": "linux-x86_64",
                    "artifact": (io.BytesIO(b"a" * size), "acme.tar.gz"),
                }
            ),
        )
        assert form.status_code == 503
        assert int(form.headers["Retry-After"]) > 0
        page = form.get_data(as_text=True)
        assert "The artifact store is unavailable, so nothing was published" in page
        assert 'name="product"' in page, "the form again, not an error page"
        assert release_count(services) == 0


def test_stream_mode_serves_whole_and_ranged_downloads_through_vigor(
    s3_server: S3Server, settings: Settings, tmp_path: Path
) -> None:
    bucket = s3_server.make_bucket()
    s3_settings = s3_app_settings(
        settings, s3_server.endpoint_url, bucket, downloads="stream"
    ).with_(s3_access_key=s3_server.access_key, s3_secret_key=s3_server.secret_key)
    with vigor_app(s3_settings) as app:
        services: Services = app.extensions["vigor"]
        client = app.test_client()
        key = make_covered_license(services, tmp_path)
        data = app_archive("1.1.0")
        check = client.post(
            "/api/v1/check",
            headers={"Authorization": f"License {key}"},
            json={
                "product": "acme-erp",
                "version": "1.0.0",
                "platform": "linux-x86_64",
                "installation_id": "s3-installation-0002",
                "nonce": secrets.token_hex(16),
            },
        )
        path = check.get_json()["signed"]["update"]["download"]["url"].removeprefix(
            "http://localhost"
        )
        auth = {"Authorization": f"License {key}"}
        whole = client.get(path, headers=auth)
        assert whole.status_code == 200, "the bytes, not a redirect to the bucket"
        assert "Location" not in whole.headers
        assert whole.data == data
        assert whole.headers["Content-Length"] == str(len(data))
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert "attachment" in whole.headers["Content-Disposition"]

        ranged = client.get(path, headers={**auth, "Range": "bytes=100-"})
        assert ranged.status_code == 206
        assert ranged.data == data[100:]
        assert ranged.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
        middle = client.get(path, headers={**auth, "Range": "bytes=10-19"})
        assert (middle.status_code, middle.data) == (206, data[10:20])
        stale = client.get(path, headers={**auth, "Range": "bytes=10-19", "If-Range": '"other"'})
        assert (stale.status_code, stale.data) == (200, data), "changed bytes: all of them"
        past = client.get(path, headers={**auth, "Range": f"bytes={len(data)}-"})
        assert past.status_code == 416
        assert past.headers["Content-Range"] == f"bytes */{len(data)}"
    s3_server.drop_bucket(bucket)


def multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """A multipart body in memory (the test client would spool a large one to a temp file, and
    leave it open when the app answers before reading it all)."""
    values = {
        name: FileStorage(value[0], filename=value[1]) if isinstance(value, tuple) else value
        for name, value in fields.items()
    }
    boundary, body = encode_multipart(MultiDict(values))
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def csrf_of(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert match, page[:500]
    return match.group(1)


def bucket_contents(server: S3Server, bucket: str) -> tuple[list[str], list[str]]:
    """Every object key in ``bucket``, and the keys of its open multipart uploads."""
    client = server.client()
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    try:
        uploads = [
            u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ]
    except Exception:  # noqa: BLE001 - rclone answers NoSuchUpload when there is none
        uploads = []
    return sorted(keys), sorted(uploads)


def test_staged_upload_and_json_publish_through_s3(
    s3_server: S3Server, settings: Settings, tmp_path: Path
) -> None:
    """Past one part (a multipart upload, then the copy to its digest's key): a digest that does
    not match keeps nothing in the bucket; a staged upload is published without its bytes being
    read again, downloads intact, and `vigor gc` removes an upload no release used."""
    from datetime import timedelta

    from sqlalchemy import update

    from server.cli import cli
    from server.domain.models import StagedUpload, utcnow

    bucket = s3_server.make_bucket()
    s3_settings = s3_app_settings(settings, s3_server.endpoint_url, bucket).with_(
        s3_access_key=s3_server.access_key, s3_secret_key=s3_server.secret_key
    )
    data = secrets.token_bytes(1024) * (9 * 1024)  # 9 MiB: past the store's 8 MiB part
    digest = hashlib.sha256(data).hexdigest()
    with vigor_app(s3_settings) as app:
        services: Services = app.extensions["vigor"]
        make_product(services)
        with services.db.sessions() as s:
            _, secret = api_tokens.create_token(s, "ci", role="publisher", actor="test")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/octet-stream"}

        wrong = client.post(f"/api/v1/admin/uploads?sha256={'0' * 64}", data=data, headers=headers)
        assert wrong.status_code == 422
        assert wrong.get_json()["error"]["code"] == "digest_mismatch"
        assert bucket_contents(s3_server, bucket) == ([], [])

        staged = client.post(f"/api/v1/admin/uploads?sha256={digest}", data=data, headers=headers)
        assert staged.status_code == 201, staged.get_json()
        assert bucket_contents(s3_server, bucket) == ([f"prod/blobs/{digest}"], [])
        unused = client.post("/api/v1/admin/uploads", data=b"never published", headers=headers)
        assert unused.status_code == 201

        published = client.post(
            "/api/v1/admin/releases",
            json={
                "product": "acme-erp",
                "version": "2.0.0",
                "kind": "update",
                "artifacts": {"linux-x86_64": staged.get_json()["id"]},
            },
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert published.status_code == 201, published.get_json()
        with services.store.open(digest) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == digest

        with services.db.session() as s:
            s.execute(update(StagedUpload).values(created_at=utcnow() - timedelta(hours=25)))
        swept = app.test_cli_runner().invoke(cli, args=["gc"])
        assert swept.exit_code == 0, swept.output
        assert "forgot 2 staged upload(s)" in swept.output
        assert "deleted 1 unreferenced blob(s)" in swept.output
        assert bucket_contents(s3_server, bucket) == ([f"prod/blobs/{digest}"], [])
    s3_server.drop_bucket(bucket)
