"""A real Vigor server process on rclone's S3 server (not moto): a 300 MB publish through the admin
API and its download, and what a publisher sees when the S3 server goes away before or during an
upload (503 ``storage_unavailable`` with Retry-After, nothing published; ``vigor gc`` then sweeps
the multipart upload the outage stranded)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product
from tests.common.live import LiveServer
from tests.common.s3server import RcloneS3Server

MIB = 1024 * 1024
BIG = 300 * MIB


@dataclass
class S3Deployment:
    server: LiveServer
    s3: RcloneS3Server
    bucket: str
    token: str
    license_key: str


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Deployment]:
    base = tmp_path_factory.mktemp("vigor-s3-live")
    with RcloneS3Server() as s3:
        bucket = s3.make_bucket()
        server = LiveServer(base, public_url="http://127.0.0.1:1")
        server.url = f"http://127.0.0.1:{server.port}"
        server.env.update(
            VIGOR_PUBLIC_URL=server.url,
            VIGOR_STORAGE="s3",
            VIGOR_S3_BUCKET=bucket,
            VIGOR_S3_PREFIX="prod",
            VIGOR_S3_REGION=s3.region,
            VIGOR_S3_ENDPOINT_URL=s3.endpoint_url,
            VIGOR_S3_ACCESS_KEY_ID=s3.access_key,
            VIGOR_S3_SECRET_ACCESS_KEY=s3.secret_key,
            VIGOR_PATCH_FROM_RELEASES="0",  # deltas of a 300 MB artifact are another issue's
        )
        init = server.vigor("init")
        assert init.returncode == 0, init.stderr
        with vigor_app(Settings.from_env(server.env)) as app:
            services: Services = app.extensions["vigor"]
            make_product(services)
            today = datetime.now(UTC).date()
            make_customer(
                services,
                "initech",
                ("maintenance", today - timedelta(days=10), today + timedelta(days=100)),
            )
            key = make_license(services, "initech")
        made = server.vigor("token", "create", "ci", "--role", "publisher")
        assert made.returncode == 0, made.stderr
        server.start()
        try:
            yield S3Deployment(server, s3, bucket, made.stdout.split()[0], key)
        finally:
            server.stop()


def pattern_chunks(total: int) -> Iterator[bytes]:
    """``total`` bytes, one MiB at a time, every MiB different (real hashing, nothing held)."""
    for number in range(total // MIB):
        yield number.to_bytes(8, "big") * (MIB // 8)


def publish(
    deployed: S3Deployment,
    version: str,
    chunks: Iterator[bytes],
    size: int,
    during: Callable[[int], None] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """POST /api/v1/admin/releases with one ``artifact.any`` streamed from ``chunks``;
    ``during(sent)`` runs after each chunk. Returns status, headers and the JSON answer."""
    boundary = uuid.uuid4().hex
    fields = {"product": "acme-erp", "version": version, "kind": "update"}
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="artifact.any"; '
        f'filename="acme-{version}.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", deployed.server.port, timeout=120)
    conn.putrequest("POST", "/api/v1/admin/releases")
    conn.putheader("Authorization", f"Bearer {deployed.token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    try:
        conn.send(head)
        sent = 0
        for chunk in chunks:
            conn.send(chunk)
            sent += len(chunk)
            if during is not None:
                during(sent)
        conn.send(tail)
    except OSError:
        pass  # the server answered early and closed: its answer is still there to read
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), json.loads(body)


def releases(deployed: S3Deployment) -> list[str]:
    """The product's releases, as the admin API lists them."""
    listing = urllib.request.Request(
        deployed.server.url + "/api/v1/admin/releases/acme-erp",
        headers={"Authorization": f"Bearer {deployed.token}"},
    )
    with urllib.request.urlopen(listing) as answer:
        return [r["version"] for r in json.loads(answer.read())]


def test_a_300_mb_publish_on_rclone_downloads_intact(deployed: S3Deployment) -> None:
    expected = hashlib.sha256()
    for chunk in pattern_chunks(BIG):
        expected.update(chunk)
    status, _, answer = publish(deployed, "9.0.0", pattern_chunks(BIG), BIG)
    assert status == 201, answer
    [artifact] = answer["artifacts"]
    assert (artifact["size"], artifact["sha256"]) == (BIG, expected.hexdigest())

    check = urllib.request.Request(
        deployed.server.url + "/api/v1/check",
        data=json.dumps(
            {
                "product": "acme-erp",
                "version": "1.0.0",
                "platform": "linux-x86_64",
                "installation_id": "s3-live-installation-01",
                "nonce": secrets.token_hex(16),
            }
        ).encode(),
        headers={
            "Authorization": f"License {deployed.license_key}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(check) as answered:
        update = json.loads(answered.read())["signed"]["update"]
    assert update["version"] == "9.0.0"
    path = update["download"]["url"].removeprefix(deployed.server.url)
    conn = http.client.HTTPConnection("127.0.0.1", deployed.server.port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"License {deployed.license_key}"})
    redirected = conn.getresponse()
    redirected.read()
    conn.close()
    assert redirected.status == 302
    location = redirected.getheader("Location", "")
    assert location.startswith(deployed.s3.endpoint_url)
    fetched = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(location) as body:  # presigned: no license key goes to S3
        while piece := body.read(MIB):
            fetched.update(piece)
            size += len(piece)
    assert (size, fetched.hexdigest()) == (BIG, expected.hexdigest())
    assert fetched.hexdigest() == update["download"]["sha256"]


def test_s3_down_before_the_upload_is_a_503_and_publishes_nothing(
    deployed: S3Deployment,
) -> None:
    before = releases(deployed)
    deployed.s3.stop()
    try:
        status, headers, answer = publish(deployed, "9.1.0", pattern_chunks(12 * MIB), 12 * MIB)
    finally:
        deployed.s3.start()
    assert status == 503
    assert answer["error"]["code"] == "storage_unavailable"
    assert int(headers["Retry-After"]) > 0
    assert releases(deployed) == before


def test_s3_down_mid_upload_is_a_503_and_publishes_nothing(deployed: S3Deployment) -> None:
    before = releases(deployed)
    digests_before = set(stored_blobs(deployed))

    def stop_s3_at_half(sent: int) -> None:
        if sent == 20 * MIB:
            deployed.s3.stop()  # the server has sent parts: a multipart upload is open

    try:
        status, headers, answer = publish(
            deployed, "9.2.0", pattern_chunks(40 * MIB), 40 * MIB, during=stop_s3_at_half
        )
    finally:
        deployed.s3.start()  # same port, same folder
    assert status == 503, answer
    assert answer["error"]["code"] == "storage_unavailable"
    assert int(headers["Retry-After"]) > 0
    assert releases(deployed) == before
    assert set(stored_blobs(deployed)) == digests_before


def serving_workers(deployed: S3Deployment) -> list[int]:
    """The gunicorn workers (children of the server process this module started)."""
    assert deployed.server.proc is not None
    master = deployed.server.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_gc_sweeps_the_upload_a_killed_worker_stranded(deployed: S3Deployment) -> None:
    before = releases(deployed)
    digests_before = set(stored_blobs(deployed))
    workers = serving_workers(deployed)

    def kill_workers_at_half(sent: int) -> None:
        if sent == 20 * MIB:
            # The server reads behind the client (socket buffers, its writer's queue): wait
            # until it has opened the multipart upload with the first parts of these 20 MiB.
            deadline = time.monotonic() + 60
            while not open_uploads(deployed):
                assert time.monotonic() < deadline, "no multipart upload was opened"
                time.sleep(0.1)
            for pid in workers:  # kill -9 of the process mid-upload: nothing can abort it
                os.kill(pid, signal.SIGKILL)

    with pytest.raises((http.client.HTTPException, OSError)):
        publish(deployed, "9.4.0", pattern_chunks(40 * MIB), 40 * MIB, during=kill_workers_at_half)
    assert open_uploads(deployed) != [], "the killed worker left its upload open"
    wait_until_serving(deployed)
    assert releases(deployed) == before

    kept = deployed.server.vigor("gc")  # 24 h by default: a fresh upload might be in flight
    assert kept.returncode == 0, kept.stderr
    assert "aborted 0 incomplete multipart upload(s)" in kept.stdout
    assert open_uploads(deployed) != []
    swept = deployed.server.vigor("gc", "--uploads-older-than", "0")
    assert swept.returncode == 0, swept.stderr
    assert "deleted 0 unreferenced blob(s)" in swept.stdout
    assert "aborted 1 incomplete multipart upload(s)" in swept.stdout
    assert open_uploads(deployed) == []
    assert set(stored_blobs(deployed)) == digests_before


def wait_until_serving(deployed: S3Deployment) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(deployed.server.url + "/readyz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stored_blobs(deployed: S3Deployment) -> list[str]:
    listed = deployed.s3.client().list_objects_v2(Bucket=deployed.bucket, Prefix="prod/blobs/")
    return [item["Key"] for item in listed.get("Contents", [])]


def open_uploads(deployed: S3Deployment) -> list[str]:
    client = deployed.s3.client()
    try:
        uploads = client.list_multipart_uploads(Bucket=deployed.bucket).get("Uploads", [])
    except client.exceptions.ClientError as exc:
        if "NoSuchUpload" in str(exc):
            return []
        raise
    return [upload["Key"] for upload in uploads]


def test_the_cli_says_in_one_line_that_s3_is_down(deployed: S3Deployment, tmp_path: Path) -> None:
    artifact = tmp_path / "acme-9.3.0.tar.gz"
    artifact.write_bytes(b"bytes that never reach the store")
    before = releases(deployed)
    deployed.s3.stop()
    try:
        result = deployed.server.vigor(
            "release", "publish", "--product", "acme-erp", "--version", "9.3.0",
            "--kind", "update", "--file", f"any={artifact}",
        )  # fmt: skip
    finally:
        deployed.s3.start()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "S3" in result.stderr
    assert releases(deployed) == before
