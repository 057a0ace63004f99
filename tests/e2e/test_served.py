"""`vigor demo` then `vigor serve`, probed from outside as an attacker would: the instance's files
are private, a cookie signed with the old published secret opens nothing, every answer carries
the security headers, and the access log holds no capability token."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask_login.utils import _create_identifier

from server.web.headers import SECURITY_HEADERS
from tests.common.live import LiveServer


@dataclass
class Served:
    server: LiveServer
    log: Path
    licenses: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("vigor-served")
    server = LiveServer(base, public_url="")
    server.env.pop("VIGOR_SECRET_KEY", None)
    server.env["VIGOR_PUBLIC_URL"] = server.url
    demo = server.vigor("demo", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    licenses = json.loads((base / "instance" / "demo-licenses.json").read_text())
    log = base / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(server.port)],
            cwd=base,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(server.url + "/readyz", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "vigor serve did not start"
                time.sleep(0.1)
        yield Served(server, log, licenses)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_demo_instance_is_private(served: Served) -> None:
    instance = served.server.base / "instance"
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "vigor.db") == 0o600
    assert len((instance / "secret_key").read_text().strip()) >= 32


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers.items()), refused.read()


UA = "probe/1.0"


def cookie_for(secret: str, user_id: str) -> str:
    """A flask-login session cookie for ``user_id`` from this client, signed with ``secret``."""
    forger = Flask("forger")
    forger.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    with forger.test_request_context(
        headers={"User-Agent": UA}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ):
        identifier = _create_identifier()
    return str(serializer.dumps({"_user_id": user_id, "_fresh": True, "_id": identifier}))


def test_a_cookie_signed_with_the_published_demo_secret_opens_nothing(served: Served) -> None:
    published = "vigor-demo-secret-key-not-for-production"  # what attackers know
    tokens = served.server.url + "/admin/tokens"
    for user_id in ("1:1", "1:2", "2:1"):
        cookie = cookie_for(published, user_id)
        status, headers, _ = fetch(tokens, Cookie=f"session={cookie}", **{"User-Agent": UA})
        assert status == 302 and "/admin/login" in headers["Location"]
    # The instance's own secret would open the page: the refusal above is the signature's.
    own = (served.server.base / "instance" / "secret_key").read_text().strip()
    cookie = cookie_for(own, "1:1")
    status, _, _ = fetch(tokens, Cookie=f"session={cookie}", **{"User-Agent": UA})
    assert status == 200


def test_every_answer_carries_the_security_headers(served: Served) -> None:
    for path in (
        "/healthz",
        "/admin/login",
        "/admin/",
        "/portal/login",
        "/static/vigor.css",
        "/api/v1/root.json",
        "/no-such-page",
        "/api/v1/download/nope",
    ):
        _, headers, _ = fetch(served.server.url + path)
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (path, name)


def test_the_access_log_holds_no_capability_token(served: Served) -> None:
    url = served.server.url
    body = json.dumps(
        {
            "product": "acme-erp",
            "version": "4.0.0",
            "platform": "linux-x86_64",
            "installation_id": "served-test-" + secrets.token_hex(8),
            "nonce": secrets.token_hex(16),
        }
    ).encode()
    check = urllib.request.Request(
        f"{url}/api/v1/check",
        data=body,
        headers={
            "Authorization": f"License {served.licenses['initech']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(check, timeout=10) as response:
        answer = response.read().decode()
    download = re.search(r"/api/v1/download/([^\"?]+)", answer)
    assert download, answer[:500]
    status, _, data = fetch(
        url + download.group(0), Authorization=f"License {served.licenses['initech']}"
    )
    assert status == 200 and data
    invited = served.server.vigor("customer", "user", "add", "initech", "buyer@initech.example")
    assert invited.returncode == 0, invited.stderr
    link = invited.stdout.strip().splitlines()[-1]
    token = link.rsplit("/", 1)[1]
    status, _, _ = fetch(f"{url}/portal/set-password/{token}", Referer=url + download.group(0))
    assert status == 200
    deadline = time.monotonic() + 10
    while "/portal/set-password/" not in served.log.read_text():  # written as the answer ends
        assert time.monotonic() < deadline, served.log.read_text()[-2000:]
        time.sleep(0.05)
    log = served.log.read_text()
    assert download.group(1) not in log
    assert token not in log
    assert 'GET /api/v1/download/[redacted] HTTP/1.1" 200' in log
    assert 'GET /portal/set-password/[redacted] HTTP/1.1" 200' in log


def test_gunicorn_started_in_the_project_folder_logs_through_the_redacting_logger() -> None:
    """`gunicorn wsgi:app` run by hand reads gunicorn.conf.py: its access log hides tokens too."""
    shown = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "wsgi:app"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "VIGOR_SECRET_KEY": secrets.token_urlsafe(32)},  # it loads the app
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^logger_class\s*=\s*server\.serving\.RedactingLogger$", shown.stdout, re.M)
