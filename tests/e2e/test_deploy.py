"""The production recipe in ``deploy/``, tested as it ships: PostgreSQL, an S3 server (moto),
Redis, two ``vigor serve`` processes and a ``vigor worker`` started from the systemd units'
``ExecStart`` lines with the environment file's variables, behind a real nginx running
``deploy/nginx/vigor.conf`` over TLS (tests/common/deploy.py). Through nginx: a publish from CI,
a check, a download verified against the signed digest; a rolling restart under a stream of
checks loses none; the admin signs in over https; nginx's internal locations are not reachable.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from server.db import Database
from server.domain import api_tokens, customers, products, users
from server.domain.vocabulary import ContractKind, Role
from tests.common.deploy import DEPLOY, PLACEHOLDER, Backing, Site, render
from tests.common.postgres import PostgresCluster
from tests.common.redis import RedisServer
from tests.common.s3server import S3Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("deploy"),
]

# Each test that publishes has a product of its own, so that what one publishes never changes
# what another's check is offered. The customer holds a license for each.
PRODUCT, PATCHED, DRAINED, CUSTOMER = "acme-erp", "acme-tools", "acme-reports", "initech"
ADMIN, PASSWORD = "ops@vendor.example", "correct horse battery staple"
PLATFORM = "linux-x86_64"
# The load test sends checks with one license from one address far faster than agents do.
LOAD_LIMITS = {
    "VIGOR_RATE_LIMIT_CHECK": "1000000/minute",
    "VIGOR_RATE_LIMIT_CHECK_ADDRESS": "1000000/minute",
}


class Deployed:
    """A site and what its operator made on it: a license key and a CI token."""

    def __init__(self, site: Site, license_keys: dict[str, str], token: str) -> None:
        self.site = site
        self.license_keys = license_keys
        self.license_key = license_keys[PRODUCT]
        self.token = token
        self.http = requests.Session()
        self.http.verify = str(site.certificate)
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify

    def publish(self, version: str, artifact: Path, product: str = PRODUCT) -> requests.Response:
        with artifact.open("rb") as body:
            return self.http.post(
                f"{self.site.public_url}/api/v1/admin/releases",
                headers={"Authorization": f"Bearer {self.token}"},
                data={"product": product, "version": version, "kind": "update"},
                files={f"artifact.{PLATFORM}": (artifact.name, body)},
                timeout=120,
            )

    def publish_staged(
        self, version: str, artifact: Path, product: str = PRODUCT
    ) -> requests.Response:
        """The two-step publish: the file as a raw upload, then the release as JSON naming it."""
        digest = base64.b64encode(hashlib.sha256(artifact.read_bytes()).digest()).decode()
        with artifact.open("rb") as body:
            staged = self.http.post(
                f"{self.site.public_url}/api/v1/admin/uploads?filename={artifact.name}",
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/octet-stream",
                    "Repr-Digest": f"sha-256=:{digest}:",
                },
                data=body,  # a file: requests streams it with its Content-Length
                timeout=120,
            )
        assert staged.status_code == 201, staged.text
        return self.http.post(
            f"{self.site.public_url}/api/v1/admin/releases",
            headers={"Authorization": f"Bearer {self.token}"},
            json={
                "product": product,
                "version": version,
                "kind": "update",
                "artifacts": {PLATFORM: staged.json()["id"]},
            },
            timeout=60,
        )

    def check(
        self,
        installed: str,
        http: requests.Session | None = None,
        installation: str = "",
        product: str = PRODUCT,
    ) -> requests.Response:
        return (http or self.http).post(
            f"{self.site.public_url}/api/v1/check",
            headers={"Authorization": f"License {self.license_keys[product]}"},
            json={
                "product": product,
                "version": installed,
                "platform": PLATFORM,
                "installation_id": installation or f"deploy-{secrets.token_hex(6)}",
                "nonce": secrets.token_hex(16),
                "patch_formats": ["zstd1", "vigor1"],  # as today's agent says
            },
            timeout=30,
        )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def deployed(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    base = tmp_path_factory.mktemp("vigor-deploy")
    s3 = S3Server()
    s3.start()
    redis = RedisServer()
    site: Site | None = None
    try:
        backing = Backing(
            database_url=postgres.create_database(f"vigor_deploy_{os.getpid()}"),
            s3_endpoint=s3.endpoint_url,
            s3_bucket=s3.make_bucket(),
            s3_region=s3.region,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
            redis_url=redis.url,
        )
        site = Site(base, backing, overrides=LOAD_LIMITS)
        # docs/deploy.md, "First host": `vigor init` with the environment file; the vendor's
        # first objects straight through the domain (each `vigor` command costs seconds).
        _ok(site.vigor("init"))
        license_keys, token = vendor_objects(backing.database_url)
        for port in site.vigor_ports:
            site.start_serving(port)
        site.start_worker()
        site.start_nginx()
        yield Deployed(site, license_keys, token)
    finally:
        if site is not None:
            site.stop()
        redis.stop()
        s3.stop()


def vendor_objects(database_url: str) -> tuple[dict[str, str], str]:
    """Products, a customer under maintenance for all of them with a license for each, a CI
    token and an admin: returns the license keys by product and the token."""
    db = Database(database_url)
    today = date.today()
    keys = {}
    try:
        with db.session() as session:
            customer = customers.add_customer(session, CUSTOMER, "Initech", actor="test")
            customers.add_contract(
                session,
                customer,
                ContractKind.MAINTENANCE,
                today - timedelta(days=30),
                today + timedelta(days=365),
                actor="test",
            )
            for slug in (PRODUCT, PATCHED, DRAINED):
                product = products.add_product(session, slug, slug.title(), actor="test")
                _, keys[slug] = customers.issue_license(session, customer, product, actor="test")
            _, token = api_tokens.create_token(session, "ci", actor="test")
            users.add_user(session, ADMIN, PASSWORD, role=Role.ADMIN, actor="test")
    finally:
        db.dispose()
    return keys, token


def artifact(tmp: Path, version: str, size: int) -> Path:
    """A release's file: mostly shared bytes (so that a patch between versions is small)."""
    path = tmp / f"acme-erp-{version}.tar"
    shared = hashlib.shake_256(b"acme-erp").digest(size)
    path.write_bytes(shared[: size - 64] + hashlib.sha256(version.encode()).hexdigest().encode())
    return path


def test_every_placeholder_of_the_recipe_is_documented() -> None:
    documented = set(
        re.findall(
            r"^\| `@([A-Z0-9_]+)@` \|", (DEPLOY.parent / "docs" / "deploy.md").read_text(), re.M
        )
    )
    used = {
        name
        for path in DEPLOY.rglob("*")
        if path.is_file()
        for name in PLACEHOLDER.findall(path.read_text())
    }
    assert used and used == documented


def test_the_systemd_units_are_valid(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the rendered units (every directive known, paths
    absolute, the ExecStart binary present)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    venv = Path(sys.executable).parent.parent
    values = {"VIGOR_HOME": str(tmp_path), "VIGOR_VENV": str(venv)}
    for name in ("vigor@.service", "vigor-worker.service"):
        text = render((DEPLOY / "systemd" / name).read_text(), values)
        (tmp_path / name.replace("@", "@8001")).write_text(text)
    verified = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        check=False,
    )
    # Only the things a test machine lacks may be named: the `vigor` user, the env files.
    problems = [
        line
        for line in verified.stderr.splitlines()
        if line.strip() and "/etc/vigor/" not in line and "User" not in line and "Group" not in line
    ]
    assert not problems, verified.stderr


def test_publish_check_and_download_through_nginx(deployed: Deployed, tmp_path: Path) -> None:
    file = artifact(tmp_path, "1.0.0", 12 * 1024 * 1024)  # streamed, unbuffered, in parts to S3
    # The two-step publish (the multipart form goes through nginx in the tests below).
    published = deployed.publish_staged("1.0.0", file)
    assert published.status_code == 201, published.text
    answer = deployed.check("0.9.0")
    assert answer.status_code == 200, answer.text
    update = answer.json()["signed"]["update"]
    assert update["version"] == "1.0.0"
    download = update["download"]
    # The link is the public https address (VIGOR_PUBLIC_URL), not a process's own.
    assert download["url"].startswith(deployed.site.public_url + "/api/v1/download/")
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    fetched = deployed.http.get(
        download["url"], headers={"Authorization": f"License {deployed.license_key}"}, timeout=60
    )
    assert fetched.status_code == 200
    digest = hashlib.sha256(fetched.content).hexdigest()
    assert digest == download["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert digest == update["manifest"]["signed"]["artifacts"][PLATFORM]["sha256"]


def test_plain_http_only_points_to_https(deployed: Deployed) -> None:
    site = deployed.site
    answer = deployed.http.get(
        f"http://127.0.0.1:{site.http_port}/api/v1/root.json", allow_redirects=False, timeout=10
    )
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"{site.public_url}/api/v1/root.json"


def test_the_internal_download_locations_are_not_reachable_from_outside(
    deployed: Deployed,
) -> None:
    """Not the local store, and not a proxy to any host (the S3 server here) for anyone."""
    s3 = deployed.site.backing.s3_endpoint.replace("://", "/")
    for path in ("/_vigor_blobs/local/00/00/" + "0" * 64, f"/_vigor_blobs/s3/{s3}/moto-api/"):
        assert deployed.http.get(deployed.site.public_url + path, timeout=10).status_code == 404


def test_the_admin_signs_in_over_https(deployed: Deployed) -> None:
    """As a browser does behind the proxy: a same-origin Referer (every page says same-origin),
    https told by X-Forwarded-Proto. The sign-in lands on the dashboard."""
    browser = requests.Session()
    browser.verify = deployed.http.verify
    browser.trust_env = False
    url = deployed.site.public_url
    page = browser.get(f"{url}/admin/login", timeout=10)
    assert page.headers["Referrer-Policy"] == "same-origin"
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text)
    assert token is not None
    signed_in = browser.post(
        f"{url}/admin/login",
        data={"csrf_token": token[1], "email": ADMIN, "password": PASSWORD},
        headers={"Referer": f"{url}/admin/login"},
        timeout=10,
    )
    assert signed_in.status_code == 200, signed_in.text[:2000]
    assert signed_in.url.rstrip("/") == f"{url}/admin", signed_in.url
    assert all(cookie.secure for cookie in browser.cookies)


class CheckLoader:
    """Threads sending update checks through nginx until stopped; every failure is kept."""

    def __init__(self, deployed: Deployed, threads: int = 2) -> None:
        self.deployed = deployed
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> CheckLoader:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        http = requests.Session()
        http.verify = self.deployed.http.verify
        http.trust_env = False
        installation = f"loader-{secrets.token_hex(6)}"
        while not self._stop.is_set():
            try:
                answer = self.deployed.check("0.9.0", http, installation)
                failure = (
                    None if answer.status_code == 200 else f"{answer.status_code} {answer.text}"
                )
            except requests.RequestException as exc:
                failure = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if failure is None:
                    self.ok += 1
                else:
                    self.failures.append(failure)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` more checks have succeeded."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, (self.ok, self.failures[:5])
            time.sleep(0.02)


def test_a_rolling_restart_under_load_fails_no_check(deployed: Deployed) -> None:
    """Each process in turn is stopped as systemd stops it (SIGTERM to gunicorn's master) and
    started again while checks keep coming: none fails, and the restarted process serves."""
    site = deployed.site
    with CheckLoader(deployed) as loader:
        loader.wait_for(50)
        for port in site.vigor_ports:
            assert site.stop_serving(port) == 0  # a graceful stop, not a crash
            loader.wait_for(30)  # the other process answers alone meanwhile
            site.start_serving(port)
            loader.wait_for(100)
    assert loader.failures == [], (len(loader.failures), loader.failures[:3])
    # The stopped processes were tried meanwhile (refused), and nginx passed those checks on.
    assert "connect() failed (111: Connection refused)" in site.nginx_log()
    assert loader.ok > 300
    # nginx sent checks to both restarted processes again.
    for port in site.vigor_ports:
        assert "POST /api/v1/check" in site.log_of(str(port)).read_text()


def multipart(fields: dict[str, str], file_field: str, file: Path) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type, as curl -F would send them."""
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + file.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_a_stopping_process_finishes_its_upload_and_takes_no_new_request(
    deployed: Deployed, tmp_path: Path
) -> None:
    """systemd stops a process (SIGTERM) while a publish is streaming into it: the publish
    completes, and meanwhile every check sent through nginx is answered at once by the other
    process instead of waiting in the stopping one's queue of connections."""
    site = deployed.site
    port = site.vigor_ports[0]
    file = artifact(tmp_path, "1.0.0", 4 * 1024 * 1024)
    fields = {"product": DRAINED, "version": "1.0.0", "kind": "update"}
    body, content_type = multipart(fields, f"artifact.{PLATFORM}", file)
    upload = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    upload.putrequest("POST", "/api/v1/admin/releases")
    upload.putheader("Authorization", f"Bearer {deployed.token}")
    upload.putheader("Content-Type", content_type)
    upload.putheader("Content-Length", str(len(body)))
    upload.endheaders()
    upload.send(body[: len(body) // 2])
    time.sleep(1)  # the process has taken the connection and reads the body
    stopping = site.processes.pop(str(port))
    stopping.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # gunicorn's master has told its workers to stop
    slowest = 0.0
    for _ in range(20):
        started = time.monotonic()
        answer = deployed.check("0.9.0", product=DRAINED)
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status_code == 200, answer.text
    assert stopping.poll() is None  # still finishing the upload
    upload.send(body[len(body) // 2 :])
    published = upload.getresponse()
    assert published.status == 201, published.read()
    assert stopping.wait(timeout=60) == 0
    site.start_serving(port)
    assert slowest < 2, f"a check waited {slowest:.1f} s for the stopping process"
    offered = deployed.check("0.9.0", product=DRAINED).json()["signed"]["update"]
    assert offered["version"] == "1.0.0"


def test_the_worker_makes_the_patches_of_a_publish(deployed: Deployed, tmp_path: Path) -> None:
    """Releases published through nginx while the worker is stopped: their patch jobs wait in
    the queue, and the worker started again from vigor-worker.service's ExecStart makes the
    patch, which a check from the older release then offers."""
    site = deployed.site
    worker = site.processes.pop("worker")
    worker.send_signal(signal.SIGTERM)  # as systemd stops it
    assert worker.wait(timeout=150) == 0
    for version in ("2.0.0", "2.0.1"):
        file = artifact(tmp_path, version, 2 * 1024 * 1024)
        published = deployed.publish(version, file, product=PATCHED)
        assert published.status_code == 201, published.text
    site.start_worker()
    deadline = time.monotonic() + 120
    while True:
        update = deployed.check("2.0.0", product=PATCHED).json()["signed"]["update"]
        if update and update.get("patch"):
            break
        assert time.monotonic() < deadline, site.log_of("worker").read_text()[-3000:]
        time.sleep(0.5)
    assert update["version"] == "2.0.1" and update["patch"]["from_version"] == "2.0.0"
    assert update["patch"]["download"]["size"] < update["download"]["size"] / 10


def test_no_process_logged_a_traceback(deployed: Deployed) -> None:
    for log in deployed.site.logs.glob("*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert "[emerg]" not in deployed.site.nginx_log()
