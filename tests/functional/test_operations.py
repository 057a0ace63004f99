"""Health, metrics, the OpenAPI document, and errors shaped as JSON."""

from __future__ import annotations

from flask import Flask, session
from flask.sessions import NullSession, SecureCookieSession
from flask.testing import FlaskClient

from server.services import Services
from server.storage.base import StorageError
from tests.common.factories import make_customer, make_license, make_product


def test_healthz_reports_database_and_storage(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "storage": "ok"}


def test_healthz_is_503_when_storage_fails(
    client: FlaskClient, services: Services, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    def broken() -> None:
        raise StorageError("bucket gone")

    monkeypatch.setattr(services.store, "ping", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["storage"] == "error: bucket gone"


def test_metrics_are_prometheus_text(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert 'vigor_releases{status="published"} 0.0' in response.get_data(as_text=True)


def test_openapi_lists_the_real_endpoints(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/v1/check", "/api/v1/root.json", "/api/v1/admin/releases", "/healthz"):
        assert path in document["paths"]


def test_unknown_api_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_oversized_json_body_is_413_not_a_crash(client: FlaskClient, services: Services) -> None:
    make_product(services)
    make_customer(services, "initech")
    key = make_license(services, "initech")
    response = client.post(
        "/api/v1/check",
        data=b"{" + b" " * 2_000_000 + b"}",
        content_type="application/json",
        headers={"Authorization": f"License {key}"},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_vigor_command_runs_as_a_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "bundle" in result.stdout and "release" in result.stdout


def test_flask_app_wsgi_reaches_the_vigor_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The app factory registers no command: `flask` finds them through the package's entry
    points, and runs them in the app that wsgi.py builds for a command (as `vigor` does: init
    writes the instance's secret; gunicorn's app refuses to start without one)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "VIGOR_INSTANCE_DIR": str(tmp_path / "instance"),
        "VIGOR_STORAGE_ROOT": str(tmp_path / "releases"),
    }
    env.pop("VIGOR_SECRET_KEY", None)  # a fresh instance: init writes the instance's own
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "init"],
        cwd=Path(__file__).resolve().parents[2],  # where wsgi.py is
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "root of trust: version 1" in result.stdout
    assert (tmp_path / "instance" / "vigor.db").exists()
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_api_requests_carry_no_cookie_session(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context("/api/v1/check", method="POST"):
        assert isinstance(session._get_current_object(), NullSession)  # type: ignore[attr-defined]
    with app.test_request_context("/admin/login"):
        assert isinstance(session._get_current_object(), SecureCookieSession)  # type: ignore[attr-defined]
    response = client.get("/api/v1/root.json")
    assert "Set-Cookie" not in response.headers


def test_flask_reaches_every_vigor_command_and_no_other() -> None:
    """The `flask.commands` entry points in pyproject.toml and the `vigor` group name the same
    commands: one added to one list and not the other would vanish from `flask --app wsgi`."""
    from importlib.metadata import entry_points

    from server.cli import cli

    plugins = {point.name: point.load() for point in entry_points(group="flask.commands")}
    vigor = {
        name: command
        for name, command in cli.commands.items()
        if name not in {"routes", "run", "shell"}
    }
    assert plugins == vigor
