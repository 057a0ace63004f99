"""Every server signs with a secret of its own: `vigor init` writes one (0600), and nothing serves
with a missing, short or published one. Instance files are private to their owner."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from flask_login.utils import _create_identifier

from server.app import create_app
from server.config import ConfigError, Settings
from server.domain import users
from server.services import Services

ROOT = Path(__file__).resolve().parents[2]

# The secret earlier versions shipped in their source code: what an attacker signs cookies with.
PUBLISHED_DEMO_SECRET = "vigor-demo-secret-key-not-for-production"


def vigor(base: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGOR_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=base,
        env={
            **clean,
            "PYTHONPATH": str(ROOT),
            "VIGOR_INSTANCE_DIR": str(base / "instance"),
            "VIGOR_STORAGE_ROOT": str(base / "releases"),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_private_secret_and_database_and_keeps_them(tmp_path: Path) -> None:
    first = vigor(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    instance = tmp_path / "instance"
    secret = (instance / "secret_key").read_text().strip()
    assert len(secret) >= 32
    assert PUBLISHED_DEMO_SECRET not in secret
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "vigor.db") == 0o600
    again = vigor(tmp_path, "init")
    assert again.returncode == 0, again.stderr
    assert (instance / "secret_key").read_text().strip() == secret, "the secret is kept"
    other = tmp_path / "other"
    other.mkdir()
    assert vigor(other, "init").returncode == 0
    assert (other / "instance" / "secret_key").read_text().strip() != secret, "each its own"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "no secret key is configured"),
        ("short-secret", "too short"),
        (PUBLISHED_DEMO_SECRET, "published value"),
    ],
)
def test_serve_refuses_a_missing_short_or_published_secret(
    tmp_path: Path, secret: str | None, reason: str
) -> None:
    env = {} if secret is None else {"VIGOR_SECRET_KEY": secret}
    result = vigor(tmp_path, "serve", "--port", "1", **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and reason in lines[0]
    assert "VIGOR_SECRET_KEY" in lines[0]


def test_wsgi_refuses_to_build_an_app_without_a_secret_in_one_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGOR_")}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env={**clean, "VIGOR_INSTANCE_DIR": str(tmp_path / "instance")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no secret key is configured" in result.stderr


@pytest.mark.parametrize("secret", ["", "x" * 31, PUBLISHED_DEMO_SECRET])
def test_an_app_that_serves_is_never_built_on_a_weak_secret(
    settings: Settings, secret: str
) -> None:
    with pytest.raises(ConfigError):
        create_app(settings.with_(secret_key=secret))


def test_the_source_holds_no_secret() -> None:
    sources = [*ROOT.joinpath("server").rglob("*.py"), ROOT / "wsgi.py"]
    assert not [p for p in sources if PUBLISHED_DEMO_SECRET in p.read_text()]


UA = {"User-Agent": "forger/1.0"}


def forged_cookie(secret: str, user_id: str) -> str:
    """A session cookie for ``user_id`` as flask-login writes one, signed with ``secret``."""
    signer = Flask("forger")
    signer.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    assert serializer is not None
    # flask-login's "strong" protection binds the session to the client's address and agent,
    # which an attacker knows.
    with signer.test_request_context(headers=UA, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        identifier = _create_identifier()
    return str(serializer.dumps({"_user_id": user_id, "_fresh": True, "_id": identifier}))


def test_a_cookie_signed_with_the_published_secret_opens_nothing(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    with services.db.sessions() as s:
        admin = users.add_user(
            s, "root@example.com", "correct horse battery", role="admin", actor="test"
        )
        s.commit()
        user_id = f"{admin.id}:{admin.session_version}"
    client.set_cookie("session", forged_cookie(PUBLISHED_DEMO_SECRET, user_id))
    refused = client.get("/admin/tokens", headers=UA)
    assert refused.status_code in (302, 303)
    assert "/admin/login" in refused.headers["Location"]
    # The same cookie signed with this server's own secret is accepted: the refusal above is the
    # signature's, not a malformed cookie's.
    client.set_cookie("session", forged_cookie(app.secret_key, user_id))  # type: ignore[arg-type]
    assert client.get("/admin/tokens", headers=UA).status_code == 200
