"""Fixtures shared by the whole suite: both databases, settings, an app, a client."""

from __future__ import annotations

import itertools
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.config import Settings
from server.db import Database
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.postgres import PostgresCluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    # One migrated template; every test gets a copy (fast) instead of migrating anew.
    template_url = cluster.create_database("vigor_template")
    db = Database(template_url)
    db.upgrade()
    db.dispose()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to the newest revision; tests get a copy of the file, as they
    get a copy of PostgreSQL's template (migrating anew took most of a small test's time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "vigor.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()  # the last connection closed: the WAL is checkpointed into the file
    return path


def _new_database(request: pytest.FixtureRequest, tmp_path: Path, template: str | None) -> str:
    if request.param == "sqlite":
        path = tmp_path / "vigor.db"
        if template is not None:
            source: Path = request.getfixturevalue("sqlite_template")
            shutil.copyfile(source, path)
            path.chmod(0o600)  # as the engine creates it: the owner's only
        return f"sqlite:///{path}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"vigor_test_{next(_counter)}", template=template)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database test runs on both SQLite and PostgreSQL."""
    return _new_database(request, tmp_path, "vigor_template")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database no migration has run on yet (on both), for tests that migrate step by step.

    (``database_url`` is a copy of a template already at the newest migration, on both.)
    """
    return _new_database(request, tmp_path, None)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        storage_root=tmp_path / "releases",
        keys_dir=tmp_path / "instance" / "keys",
        public_base_url="http://localhost",
        secret_key=secrets.token_urlsafe(32),  # each test's own, as `vigor init` would make
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    with vigor_app(settings) as application:
        yield application


@pytest.fixture
def services(app: Flask) -> Services:
    svc: Services = app.extensions["vigor"]
    return svc


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


PLUMBING = ("tests/e2e/", "tests/functional/agent/")


def pytest_collection_finish(session: pytest.Session) -> None:
    # In an xdist worker under `--dist loadgroup`, xdist appends each test's group to its id; a
    # pytest whose ids it cannot change (9.2 with xdist 3.8) would split every group unnoticed.
    if session.config.getoption("loadgroup", default=False):
        ungrouped = [
            item.nodeid
            for item in session.items
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
        ]
        if ungrouped:
            raise pytest.UsageError(f"xdist did not group {ungrouped[0]}: see pyproject.toml")


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A module-scoped fixture (a live server, a browser) is made once per worker that runs the
    # module's tests: those tests share one xdist group (`--dist loadgroup`), so it is made once.
    # A module that names its own group keeps it.
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        if any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    # These tests run the agent in subprocesses; in this process only test plumbing (proxy and
    # simulator handler threads, readiness polls) owns sockets, and when the garbage collector
    # finalizes one of those is not deterministic. Everywhere else an unclosed resource is an error.
    for item in items:
        if any(part in str(item.fspath) for part in PLUMBING):
            item.add_marker(
                pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
            )
