"""VIGOR_DOWNLOADS=accel through a real nginx, configured with deploy/nginx/vigor-accel.conf:
Vigor authorizes, nginx sends the bytes (the local store's file, or the S3 object it fetches with
the presigned query), whole or ranged; the internal locations cannot be asked for directly."""

from __future__ import annotations

import hashlib
import http.client
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from server.config import Settings
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.deploy import render
from tests.common.factories import (
    app_archive,
    make_covered_license,
)
from tests.common.nginx import Nginx
from tests.common.s3server import S3Server

ROOT = Path(__file__).resolve().parents[3]


def documented_snippet(storage_root: Path) -> str:
    """deploy/nginx/vigor-accel.conf, the locations docs/storage.md names, for this store root
    (the S3 endpoints here are addresses: the resolver is never asked)."""
    conf = (ROOT / "deploy" / "nginx" / "vigor-accel.conf").read_text()
    return render(conf, {"VIGOR_STORAGE_ROOT": str(storage_root), "DNS_RESOLVER": "127.0.0.1"})


def get(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body


@pytest.fixture(params=["local", "rclone"])
def accel_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(
        instance_dir=tmp_path / "instance",
        storage_root=tmp_path / "releases",
        keys_dir=tmp_path / "instance" / "keys",
        secret_key=secrets.token_hex(32),
        downloads="accel",
    )
    if request.param == "local":
        yield settings
        return
    server: S3Server = request.getfixturevalue("rclone_server")
    bucket = server.make_bucket(f"vigor-{uuid.uuid4().hex[:12]}")
    yield settings.with_(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_prefix="prod",
        s3_endpoint_url=server.endpoint_url,
        **{f"s3_{k}": v for k, v in server.credentials().items()},
    )
    server.drop_bucket(bucket)


def test_accel_downloads_are_sent_by_nginx(accel_settings: Settings, tmp_path: Path) -> None:
    with vigor_app(accel_settings) as app:
        services: Services = app.extensions["vigor"]
        key = make_covered_license(services, tmp_path)
        data = app_archive("1.1.0")
        vigor = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=vigor.serve_forever, daemon=True)
        thread.start()
        snippet = documented_snippet(Path(accel_settings.storage_root).resolve())
        try:
            with Nginx(f"http://127.0.0.1:{vigor.server_port}", snippet) as nginx:
                auth = {"Authorization": f"License {key}"}
                with app.test_client() as client:
                    check = client.post(
                        "/api/v1/check",
                        headers=auth,
                        json={
                            "product": "acme-erp",
                            "version": "1.0.0",
                            "platform": "linux-x86_64",
                            "installation_id": "accel-installation-01",
                            "nonce": secrets.token_hex(16),
                        },
                    )
                download = check.get_json()["signed"]["update"]["download"]
                path = download["url"].removeprefix("http://localhost")

                status, headers, body = get(nginx.url, path, auth)
                assert status == 200, (body[:300], nginx.error_log()[-1000:])
                assert body == data
                assert hashlib.sha256(body).hexdigest() == download["sha256"]
                assert "x-accel-redirect" not in headers, "nginx consumes it"
                assert "attachment" in headers.get("content-disposition", "")

                status, headers, body = get(nginx.url, path, {**auth, "Range": "bytes=10-19"})
                assert body == data[10:20]
                assert headers["content-range"] == f"bytes 10-19/{len(data)}"
                # rclone's serve s3 answers a range with 200 (and the right Content-Range).
                assert status == (206 if accel_settings.storage_backend == "local" else 200)

                # Vigor still decides: no license key, no bytes.
                status, _, body = get(nginx.url, path, {})
                assert status in (401, 403)
                assert body != data
                # and nobody reaches the internal locations from outside.
                digest = download["sha256"]
                local = f"/_vigor_blobs/local/{digest[:2]}/{digest[2:4]}/{digest}"
                assert get(nginx.url, local, {})[0] == 404
        finally:
            vigor.shutdown()
            thread.join(5)
