"""Sign-in throttling as an attacker meets it: ``vigor serve`` with two workers, fresh connections,
on SQLite and on PostgreSQL, and with Redis. The counters are in the database (or Redis), so both
workers share them: the configured limit holds exactly, per address and per account (addresses
told by a trusted proxy's ``X-Forwarded-For``, as behind a load balancer)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from server.db import Database
from server.domain import users
from server.domain.vocabulary import Role
from tests.common.live import LiveServer, free_port
from tests.common.postgres import PostgresCluster
from tests.common.redis import RedisServer

ADMIN, OTHER_ADMIN, PASSWORD = "ops@example.com", "audit@example.com", "correct horse battery"
PER_ADDRESS, PER_ACCOUNT = 10, 5


@dataclass
class Site:
    server: LiveServer
    database_url: str


def start_site(base: Path, database_url: str, **env: str) -> LiveServer:
    """``vigor init``, two admins, then ``vigor serve`` with two workers behind one proxy hop."""
    server = LiveServer(base, public_url="http://127.0.0.1:9")
    server.env.update(
        {
            "VIGOR_DATABASE_URL": database_url,
            "VIGOR_TRUST_PROXY_HOPS": "1",
            "VIGOR_RATE_LIMIT_LOGIN": f"{PER_ADDRESS}/minute",
            "VIGOR_RATE_LIMIT_LOGIN_ACCOUNT": f"{PER_ACCOUNT}/minute",
            **env,
        }
    )
    initialised = server.vigor("init")
    assert initialised.returncode == 0, initialised.stderr
    db = Database(database_url)
    try:
        with db.session() as session:
            for email in (ADMIN, OTHER_ADMIN):
                users.add_user(session, email, PASSWORD, role=Role.ADMIN, actor="test")
    finally:
        db.dispose()
    server.start(vigor_serve=True)
    return server


@pytest.fixture(params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("vigor-throttle")  # one server per database: it takes seconds
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'vigor.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"vigor_throttle_{base.name}".replace("-", "_"))
    server = start_site(base, url)
    yield Site(server, url)
    server.stop()


def form(server: LiveServer, path: str, address: str) -> tuple[dict[str, str], str]:
    """A session cookie and the CSRF token of the form at ``path``."""
    page = requests.get(server.url + path, headers=_headers(address), timeout=10)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text)
    assert token is not None
    return dict(page.cookies), token[1]


def _headers(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, "Connection": "close"}  # a fresh connection each time


def post(server: LiveServer, path: str, address: str, data: dict[str, str]) -> Any:
    cookies, token = form(server, path, address)
    return requests.post(
        server.url + path,
        data={**data, "csrf_token": token},
        cookies=cookies,
        headers=_headers(address),
        allow_redirects=False,
        timeout=10,
    )


def test_sign_ins_against_vigor_serve_with_two_workers_are_throttled_at_the_limits(
    site: Site,
) -> None:
    """The probes, in one test per database (each starts a server): every one uses addresses
    and accounts of its own, so that none reaches another's limit."""
    thirty_admin_sign_ins_from_one_address_stop_at_the_limit(site)
    thirty_license_key_sign_ins_from_one_address_stop_at_the_limit(site)
    guesses_at_one_account_from_many_addresses_stop_at_the_account_limit(site)
    guesses_at_one_portal_account_from_many_addresses_are_throttled(site)
    the_counters_are_rows_of_the_database_holding_no_secret(site)


def thirty_admin_sign_ins_from_one_address_stop_at_the_limit(site: Site) -> None:
    """Thirty guesses at thirty accounts (no account limit is reached), fresh connections to two
    workers: exactly the configured ten are answered, then 429 with Retry-After."""
    answers = [
        post(
            site.server,
            "/admin/login",
            "198.51.100.1",
            {"email": f"u{n}@example.com", "password": "guess"},
        )
        for n in range(30)
    ]
    assert [a.status_code for a in answers] == [400] * PER_ADDRESS + [429] * (30 - PER_ADDRESS)
    assert all(0 < int(a.headers["Retry-After"]) <= 60 for a in answers[PER_ADDRESS:])


def thirty_license_key_sign_ins_from_one_address_stop_at_the_limit(site: Site) -> None:
    answers = [
        post(site.server, "/portal/login", "198.51.100.2", {"key": f"vgl_guess{n:04d}"})
        for n in range(30)
    ]
    assert [a.status_code for a in answers] == [400] * PER_ADDRESS + [429] * (30 - PER_ADDRESS)


def guesses_at_one_account_from_many_addresses_stop_at_the_account_limit(
    site: Site,
) -> None:
    addresses = [f"203.0.113.{n}" for n in range(1, 13)]
    answers = [
        post(site.server, "/admin/login", address, {"email": ADMIN, "password": "guess"})
        for address in addresses
    ]
    assert [a.status_code for a in answers] == [400] * PER_ACCOUNT + [429] * (12 - PER_ACCOUNT)
    # The account's window is closed to everyone until it ends, the right password included.
    right = post(
        site.server, "/admin/login", "203.0.113.99", {"email": ADMIN.upper(), "password": PASSWORD}
    )
    assert right.status_code == 429
    # ... and signs no one in: the cookies it sets (the error page's session, the anonymous
    # visitor's) do not open the admin pages.
    admin = requests.get(
        site.server.url + "/admin/",
        cookies=right.cookies,
        headers=_headers("203.0.113.99"),
        allow_redirects=False,
        timeout=10,
    )
    assert admin.status_code in (302, 303) and "/admin/login" in admin.headers["Location"]
    # Another account from the same addresses is not locked.
    other = post(
        site.server, "/admin/login", "203.0.113.1", {"email": OTHER_ADMIN, "password": PASSWORD}
    )
    assert other.status_code == 303


def guesses_at_one_portal_account_from_many_addresses_are_throttled(site: Site) -> None:
    answers = [
        post(
            site.server,
            "/portal/login",
            f"192.0.2.{n}",
            {"user-email": "it@customer.example", "user-password": f"guess{n}"},
        )
        for n in range(1, 9)
    ]
    assert [a.status_code for a in answers] == [400] * PER_ACCOUNT + [429] * (8 - PER_ACCOUNT)


def the_counters_are_rows_of_the_database_holding_no_secret(site: Site) -> None:
    post(site.server, "/admin/login", "198.51.100.3", {"email": ADMIN, "password": "guess"})
    post(site.server, "/portal/login", "198.51.100.3", {"key": "vgl_guess"})
    db = Database(site.database_url)
    try:
        with db.engine.connect() as conn:
            keys = [row[0] for row in conn.exec_driver_sql("SELECT key FROM throttle_windows")]
    finally:
        db.dispose()
    assert any("198.51.100.3" in key for key in keys), "per address"
    assert not any("@" in key or "vgl_" in key for key in keys), "accounts and keys as digests"


def test_with_a_redis_storage_url_both_workers_count_in_redis(tmp_path: Path) -> None:
    """``VIGOR_RATE_LIMIT_STORAGE_URL=redis://…`` on a fresh install: the client is a dependency,
    and the counters live in Redis, not the database."""
    store = RedisServer()
    try:
        url = f"sqlite:///{tmp_path / 'vigor.db'}"
        server = start_site(tmp_path, url, VIGOR_RATE_LIMIT_STORAGE_URL=store.url)
        try:
            thirty_admin_sign_ins_from_one_address_stop_at_the_limit(Site(server, url))
            keys = [key.decode() for key in store.client.keys("*")]
            cookies, token = form(server, "/admin/login", "198.51.100.9")
            store.stop()
            down = requests.post(
                server.url + "/admin/login",
                data={"email": ADMIN, "password": PASSWORD, "csrf_token": token},
                cookies=cookies,
                headers=_headers("198.51.100.9"),
                allow_redirects=False,
                timeout=10,
            )
            assert down.status_code == 503, "Redis gone: refused until it is back, not a 500"
            assert down.headers["Retry-After"] == "5"
        finally:
            server.stop()
    finally:
        store.stop()
    assert any("198.51.100.1" in key for key in keys)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM throttle_windows").scalar() == 0
    finally:
        db.dispose()


@pytest.mark.parametrize("command", [("init",), ("serve", "--port", "9")])
def test_an_unreachable_storage_url_is_one_line_at_startup(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    server = LiveServer(tmp_path, public_url="http://127.0.0.1:9")
    server.env["VIGOR_RATE_LIMIT_STORAGE_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    result = server.vigor(*command)
    assert result.returncode != 0
    assert result.stderr.startswith("error: VIGOR_RATE_LIMIT_STORAGE_URL: "), result.stderr
    assert "does not answer" in result.stderr
    assert result.stderr.count("\n") == 1, "one line, no traceback"
    assert not (tmp_path / "instance" / "vigor.db").exists(), "nothing was created"
