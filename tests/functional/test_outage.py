"""A database outage answers 503 with Retry-After (never a 500), and the same app answers again
once the database is back, with no restart: a real PostgreSQL server stopped and started, and a
SQLite file that vanished and came back."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.config import Settings
from server.domain import users
from server.services import Services
from server.web import ratelimit
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.common.postgres import PostgresCluster
from tests.functional.test_admin_users import PASSWORD, sign_in
from tests.functional.test_check import check, days

Outage = tuple[Callable[[], None], Callable[[], None]]  # (begin, end)


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        instance_dir=tmp_path / "instance",
        database_url=url,
        storage_root=tmp_path / "releases",
        keys_dir=tmp_path / "instance" / "keys",
        public_base_url="http://localhost",
        secret_key=secrets.token_urlsafe(32),
    )


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A server of this module's own: stopping the suite's shared one would fail other tests."""
    cluster = PostgresCluster(crash_safe_commits=True)  # the outage is a crash: keep what committed
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Outage]]:
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("own_postgres")
        url = cluster.create_database(f"outage_{secrets.token_hex(4)}")
        with vigor_app(_settings(tmp_path, url)) as app:
            yield app, (cluster.pause, cluster.resume)
        return
    database = tmp_path / "vigor.db"
    with vigor_app(_settings(tmp_path, f"sqlite:///{database}")) as app:
        aside = tmp_path / "aside"
        aside.mkdir()

        def vanish() -> None:
            # The disk holding the database is gone: the file cannot be opened, and the
            # connections this process held went with it. (After the rate limiter's sync, which
            # would otherwise recreate the file if it connected between the move and the mkdir.)
            assert app.extensions[ratelimit.EXTENSION].batched.idle(10)
            app.extensions["vigor"].db.dispose()
            for path in tmp_path.glob("vigor.db*"):
                shutil.move(path, aside / path.name)
            database.mkdir()  # what is there now is no database file

        def come_back() -> None:
            database.rmdir()
            for path in aside.iterdir():
                shutil.move(path, tmp_path / path.name)

        yield app, (vanish, come_back)


def _licensed(app: Flask, tmp_path: Path) -> str:
    services: Services = app.extensions["vigor"]
    make_product(services)
    make_customer(services, "initech", ("maintenance", days(-100), days(100)))
    make_release(services, tmp_path, "1.1.0")
    return make_license(services, "initech")


def test_a_database_outage_is_503_with_retry_after_then_recovers(
    outage: tuple[Flask, Outage], tmp_path: Path
) -> None:
    app, (begin, end) = outage
    client: FlaskClient = app.test_client()
    key = _licensed(app, tmp_path)
    with app.extensions["vigor"].db.sessions() as s:
        users.add_user(s, "admin@v.example", PASSWORD, role="admin", actor="test")
    browser: FlaskClient = app.test_client()
    assert sign_in(browser, "admin@v.example") == 303
    assert browser.get("/admin/releases").status_code == 200
    installation = "inst-" + secrets.token_hex(8)
    answered, _ = check(client, key, installation_id=installation)
    assert answered.status_code == 200
    begin()
    try:
        for _ in range(3):  # the first request finds the connections broken, later ones too
            refused, _ = check(client, key, installation_id=installation)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert refused.get_json()["error"]["code"] == "database_unavailable"
        page = browser.get("/admin/releases")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "5"
        assert page.mimetype == "text/html"
        assert "database is unavailable" in page.get_data(as_text=True)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
        assert client.get("/livez").status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.get_json()["database"].startswith("error")
        scraped = client.get("/metrics")
        assert scraped.status_code == 200  # the counters are still there to alert on
        assert "vigor_database_up 0.0" in scraped.get_data(as_text=True)
    finally:
        end()
    again, _ = check(client, key, installation_id=installation)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert client.get("/readyz").status_code == 200
    assert browser.get("/admin/releases").status_code == 200
