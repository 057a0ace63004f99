"""Health, metrics, the OpenAPI document, and errors shaped as JSON."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask, session
from flask.sessions import NullSession, SecureCookieSession
from flask.testing import FlaskClient
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.orm import Session

from server.domain import jobs
from server.domain.trust import iso
from server.domain.vocabulary import JobKind
from server.services import Services
from server.storage.base import StorageError
from server.web import health
from tests.common.factories import make_customer, make_license, make_product


def test_healthz_reports_database_and_storage(client: FlaskClient, services: Services) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    health = response.get_json()
    assert (health["status"], health["database"], health["storage"]) == ("ok", "ok", "ok")
    probes = {probe["name"]: probe for probe in health["probes"]}
    assert list(probes) == ["database", "storage", "trust", "worker"]
    root = services.root()
    assert probes["trust"] == {
        "name": "trust",
        "status": "ok",
        "root_version": root.version,
        "expires": iso(root.expires),
        "seconds": probes["trust"]["seconds"],
    }
    assert probes["database"]["revision"] == services.db.head_revision
    assert probes["worker"]["status"] == "ok", "nothing queued: no worker is needed yet"


@pytest.mark.parametrize(
    ("left", "code", "status"),
    [
        (timedelta(days=20), 200, "warning: the root of trust expires in 20 days"),
        (timedelta(hours=-1), 503, "error: the root of trust has expired; agents refuse it"),
    ],
)
def test_healthz_warns_before_the_root_of_trust_expires_and_fails_once_it_has(
    client: FlaskClient,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    left: timedelta,
    code: int,
    status: str,
) -> None:
    expiring = dataclasses.replace(services.root(), expires=datetime.now(UTC) + left)
    monkeypatch.setattr(services, "root", lambda: expiring)
    response = client.get("/healthz")
    assert response.status_code == code
    trust = {probe["name"]: probe for probe in response.get_json()["probes"]}["trust"]
    assert trust["status"].startswith(status)
    assert trust["status"].endswith("(vigor keys write-root)")
    assert client.get("/readyz").status_code == 200, "checks are still answered"


def test_healthz_is_503_when_a_job_waits_and_no_worker_runs(
    client: FlaskClient, services: Services
) -> None:
    with services.db.sessions() as session:
        jobs.enqueue(session, JobKind.PROBE, "probe:health", {})
        session.commit()
    response = client.get("/healthz")
    assert response.status_code == 503
    worker = {probe["name"]: probe for probe in response.get_json()["probes"]}["worker"]
    assert (worker["status"], worker["heartbeat_age_seconds"], worker["queued"]) == (
        "error",
        None,
        1,
    )
    assert client.get("/readyz").status_code == 200, "checks do not need the worker"


def test_healthz_is_503_when_storage_fails_but_the_instance_stays_ready(
    client: FlaskClient, services: Services, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    def broken() -> None:
        raise StorageError("bucket gone")

    monkeypatch.setattr(services.store, "ping", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["storage"] == "error: bucket gone"
    # Checks need only the database: an S3 outage must not pull every instance out of a pool.
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ok", "database": "ok"})
    assert client.get("/livez").get_json() == {"status": "ok"}


def test_healthz_names_the_schema_it_is_behind(client: FlaskClient, services: Services) -> None:
    with services.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0006_throttle'"))
    probe = client.get("/healthz").get_json()["probes"][0]
    assert probe == {
        "name": "database",
        "status": "error: schema",
        "revision": "0006_throttle",
        "needs": services.db.head_revision,
        "seconds": probe["seconds"],
    }


def test_a_probe_added_by_another_part_joins_healthz(app: Flask, client: FlaskClient) -> None:
    """How the worker's probe plugs in: a function of a session returning its details."""
    seen: list[object] = []

    def queue(session: Session) -> dict[str, object]:
        seen.append(session.scalar(text("SELECT 1")))
        return {"status": "error: no heartbeat for 300 s", "oldest_queued_seconds": 12}

    health.add_probe(app, "worker", health.in_session(queue))
    response = client.get("/healthz")
    assert response.status_code == 503
    worker = response.get_json()["probes"][-1]
    assert worker["name"] == "worker" and worker["oldest_queued_seconds"] == 12
    assert seen == [1]
    assert client.get("/readyz").status_code == 200  # the worker is not the checks' business


def test_a_collector_added_by_another_part_joins_metrics(app: Flask, client: FlaskClient) -> None:
    """How the worker's queue depth plugs in: a gauge read at scrape time."""

    class Queue(Collector):
        def collect(self) -> Iterator[Metric]:
            yield GaugeMetricFamily("vigor_jobs_queued", "Jobs waiting", value=7)

    health.add_collector(app, Queue())
    assert "vigor_jobs_queued 7.0" in client.get("/metrics").get_data(as_text=True)


def test_livez_does_no_io(client: FlaskClient, services: Services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_io(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("/livez touched the database or the store")

    monkeypatch.setattr(services.db, "sessions", no_io)
    monkeypatch.setattr(services.db, "reading", no_io)
    monkeypatch.setattr(services.store, "ping", no_io)
    assert client.get("/livez").status_code == 200


def test_readyz_gives_up_on_a_database_that_does_not_answer(
    app: Flask, client: FlaskClient, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    services: Services = app.extensions["vigor"]
    monkeypatch.setattr(services.db, "ping", lambda: release.wait(30))
    monkeypatch.setattr(app.extensions["vigor.ping"], "_timeout", 0.2)
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.get_json()["database"] == "no answer within 0.2 s"
    finally:
        release.set()


def test_metrics_are_prometheus_text(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'vigor_releases{status="published"} 0.0' in text
    assert "vigor_database_up 1.0" in text
    assert "# TYPE vigor_downloads_total counter" in text


def test_openapi_lists_the_real_endpoints(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/v1/check",
        "/api/v1/root.json",
        "/api/v1/admin/releases",
        "/healthz",
        "/readyz",
        "/livez",
        "/metrics",
    ):
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
