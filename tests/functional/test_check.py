"""POST /api/v1/check and downloads, end to end through Flask on SQLite and PostgreSQL.

A scenario with releases at known dates and customers in every maintenance state; each answer
is verified with the published root exactly as an agent would.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, event, func, select, update

from server.cli import cli
from server.domain import customers, releases, users
from server.domain.models import AuditEvent, DownloadEvent, Installation
from server.domain.trust import verify_role, verify_root
from server.services import Services
from server.web import ratelimit
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release

TODAY = datetime.now(UTC).date()
NOW = datetime.now(UTC)


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


def ago(n: int) -> datetime:
    return NOW - timedelta(days=n)


def check(client: FlaskClient, key: str | None, version: str = "1.0.0", **overrides: Any) -> Any:
    body = {
        "product": "acme-erp",
        "version": version,
        "platform": "linux-x86_64",
        "channel": "stable",
        "installation_id": overrides.pop("installation_id", "inst-" + secrets.token_hex(8)),
        "nonce": secrets.token_hex(16),
        **overrides,
    }
    headers = {"Authorization": f"License {key}"} if key else {}
    return client.post("/api/v1/check", json=body, headers=headers), body


def verified(client: FlaskClient, response: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Verify a check answer as the agent does; return its signed part."""
    assert response.status_code == 200, response.get_json()
    root = verify_root(client.get("/api/v1/root.json").get_json(), None)
    document = response.get_json()
    verify_role(document, root, "check", "check")
    signed: dict[str, Any] = document["signed"]
    assert signed["nonce"] == body["nonce"]
    assert signed["installation_id"] == body["installation_id"]
    if signed["update"]:
        verify_role(signed["update"]["manifest"], root, "release", "release")
    return signed


@pytest.fixture
def scenario(services: Services, tmp_path: Path) -> dict[str, str]:
    """Releases at known dates; customers in every state. Returns license keys by customer."""
    make_product(services)
    make_release(services, tmp_path, "1.0.0", kind="version", published_at=ago(400))
    make_release(services, tmp_path, "1.1.0", published_at=ago(200))
    make_release(
        services, tmp_path, "1.1.1", kind="security", severity="critical", published_at=ago(100)
    )
    make_release(services, tmp_path, "1.2.0", published_at=ago(50))
    make_release(services, tmp_path, "2.0.0", kind="version", published_at=ago(10))
    make_customer(services, "active", ("maintenance", days(-300), days(200)))
    make_customer(services, "expiring", ("maintenance", days(-300), days(10)))
    make_customer(services, "lapsed", ("maintenance", days(-500), days(-150)))  # covers 1.1.0 only
    make_customer(
        services,
        "renewed",
        ("maintenance", days(-500), days(-150)),
        ("maintenance", days(-1), days(365)),
    )
    make_customer(services, "never")
    make_customer(services, "revoked", ("maintenance", days(-300), days(200)))
    make_customer(
        services,
        "custom",
        ("maintenance", days(-300), days(200)),
        ("customization", days(-300), days(200)),
    )
    make_customer(services, "other", ("maintenance", days(-300), days(200)))
    make_release(
        services,
        tmp_path,
        "1.2.0+custom.1",
        published_at=ago(40),
        channel="custom",
        customers=("custom",),
    )
    keys = {
        name: make_license(services, name)
        for name in (
            "active",
            "expiring",
            "lapsed",
            "renewed",
            "never",
            "revoked",
            "custom",
            "other",
        )
    }
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, keys["revoked"]), "revoked", actor="t"
        )
    return keys


EXPECTED = [
    # customer, installed, channel, status, offered version, renewal newest
    ("active", "1.0.0", "stable", "active", "2.0.0", None),
    ("expiring", "1.0.0", "stable", "expiring", "2.0.0", None),
    ("lapsed", "1.0.0", "stable", "lapsed", "1.1.0", "2.0.0"),
    ("lapsed", "1.1.0", "stable", "lapsed", None, "2.0.0"),
    ("renewed", "1.0.0", "stable", "active", "2.0.0", None),
    ("never", "1.0.0", "stable", "none", None, "2.0.0"),
    ("custom", "1.2.0", "custom", "active", "2.0.0", None),
    ("custom", "1.1.0", "custom", "active", "2.0.0", None),
    ("other", "1.2.0", "custom", "active", "2.0.0", None),
    ("active", "2.0.0", "stable", "active", None, None),
]


@pytest.mark.parametrize(
    ("who", "installed", "channel", "status", "offer", "newest"),
    EXPECTED,
    ids=[f"{e[0]}-{e[1]}-{e[2]}" for e in EXPECTED],
)
def test_every_license_gets_what_the_rules_give(
    client: FlaskClient,
    scenario: dict[str, str],
    who: str,
    installed: str,
    channel: str,
    status: str,
    offer: str | None,
    newest: str | None,
) -> None:
    response, body = check(client, scenario[who], installed, channel=channel)
    signed = verified(client, response, body)
    assert signed["entitlement"]["status"] == status
    assert (signed["update"] or {}).get("version") == offer
    assert ((signed["renewal"] or {}).get("newest_version")) == newest


def test_lapsed_cutoff_is_the_end_of_the_last_covered_day(
    client: FlaskClient, scenario: dict[str, str]
) -> None:
    signed = verified(client, *check(client, scenario["lapsed"]))
    assert signed["entitlement"]["maintenance_ends_on"] == days(-150).isoformat()
    assert signed["entitlement"]["cutoff"] == f"{days(-149).isoformat()}T00:00:00Z"
    renewal = signed["renewal"]
    # Missing since the cutoff: 1.1.1 (security), 1.2.0 (update), 2.0.0 (version).
    assert (renewal["updates"], renewal["security"], renewal["versions"]) == (1, 1, 1)
    assert "Renew maintenance" in renewal["message"]


def test_customized_build_goes_only_to_its_customer(
    client: FlaskClient, services: Services, scenario: dict[str, str], tmp_path: Path
) -> None:
    # Make the customized build the newest on its channel.
    make_release(
        services,
        tmp_path,
        "2.0.0+custom.1",
        published_at=ago(1),
        channel="custom",
        customers=("custom",),
    )
    mine = verified(client, *check(client, scenario["custom"], "2.0.0", channel="custom"))
    assert mine["update"]["version"] == "2.0.0+custom.1"
    theirs = verified(client, *check(client, scenario["other"], "2.0.0", channel="custom"))
    assert theirs["update"] is None


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        pytest.param(None, 401, "license_missing", id="missing"),
        pytest.param("vgl_unknown", 401, "license_unknown", id="unknown"),
        pytest.param("revoked", 403, "license_revoked", id="revoked"),
    ],
)
def test_license_refusals(
    client: FlaskClient, scenario: dict[str, str], key: str | None, status: int, code: str
) -> None:
    response, _ = check(client, scenario.get(key or "", key))
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


@pytest.mark.parametrize("key", ["vgl_unknown", "revoked"])
def test_a_refused_license_is_told_so_before_its_bad_body(
    client: FlaskClient, scenario: dict[str, str], key: str
) -> None:
    headers = {"Authorization": f"License {scenario.get(key, key)}"}
    bad_body = client.post("/api/v1/check", data="nope", headers=headers)
    bad_field, _ = check(client, scenario.get(key, key), nonce="not-hex!")
    assert bad_body.status_code == bad_field.status_code == (401 if key == "vgl_unknown" else 403)


def test_suspended_license_is_refused_and_then_restored(
    client: FlaskClient, services: Services, scenario: dict[str, str]
) -> None:
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, scenario["active"]), "suspended", actor="t"
        )
    response, _ = check(client, scenario["active"])
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "license_suspended"
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, scenario["active"]), "active", actor="t"
        )
    assert check(client, scenario["active"])[0].status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product", "Not A Product"),
        ("version", "one point oh"),
        ("platform", "plan9-mips"),
        ("installation_id", "short"),
        ("nonce", "not-hex!"),
        ("channel", "Bad Channel"),
        ("version", 7),
        ("nonce", None),
    ],
)
def test_malformed_body_names_the_field(
    client: FlaskClient, scenario: dict[str, str], field: str, value: Any
) -> None:
    response, _ = check(client, scenario["active"], **{field: value})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field


def test_non_json_body_and_wrong_product(
    client: FlaskClient, scenario: dict[str, str], services: Services
) -> None:
    auth = {"Authorization": f"License {scenario['active']}"}
    for path in ("/api/v1/check", "/api/v1/report"):
        not_json = client.post(path, data="nope", headers=auth)
        assert not_json.status_code == 400
        assert "send a JSON object" in not_json.get_json()["error"]["message"]
        not_object = client.post(path, json=[1, 2], headers=auth)
        assert not_object.status_code == 400
        assert not_object.get_json()["error"]["message"] == "body: must be a JSON object"
    make_product(services, "other-app")
    wrong, _ = check(client, scenario["active"], product="other-app")
    assert wrong.status_code == 403
    assert wrong.get_json()["error"]["code"] == "wrong_product"


def test_installation_cap_and_no_write_on_every_poll(
    client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    make_product(services)
    make_release(services, tmp_path, "1.0.0", published_at=ago(5))
    make_customer(services, "capped", ("maintenance", days(-10), days(100)))
    key = make_license(services, "capped", max_installations=2)
    assert check(client, key, installation_id="installation-one-0001")[0].status_code == 200
    assert check(client, key, installation_id="installation-two-0002")[0].status_code == 200
    refused, _ = check(client, key, installation_id="installation-three-03")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "installation_limit"
    with services.db.sessions() as s:
        first_seen = s.scalar(
            select(Installation.last_seen).where(Installation.uid == "installation-one-0001")
        )
    assert check(client, key, installation_id="installation-one-0001")[0].status_code == 200
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Installation)) == 2
        assert (
            s.scalar(
                select(Installation.last_seen).where(Installation.uid == "installation-one-0001")
            )
            == first_seen
        )


class SqlLog:
    """Statements and transaction ends an engine sees (what a check costs the database)."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        self.commits = 0
        self.engine = engine

    def __enter__(self) -> SqlLog:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement.split(None, 1)[0].upper())

    def _commit(self, _conn: Any) -> None:
        self.commits += 1


@pytest.fixture
def limits_in_memory(app: Flask, services: Services) -> None:
    """Rate limits counted in this process: the statements seen are then the check's own (the
    limiter adds one write per process and second to the database: bench/check_profile.py)."""
    app.extensions[ratelimit.EXTENSION] = ratelimit.rate_limits_for("memory://", services.db)


@pytest.mark.usefixtures("limits_in_memory")
def test_a_known_installation_polling_costs_one_read_and_no_transaction(
    client: FlaskClient, services: Services, scenario: dict[str, str]
) -> None:
    inst = "installation-poll-0001"
    verified(client, *check(client, scenario["active"], installation_id=inst))  # registers it
    with SqlLog(services.db.engine) as log:
        answered = check(client, scenario["active"], installation_id=inst)
    assert verified(client, *answered)["update"]["version"] == "2.0.0"
    assert log.statements == ["SELECT"], "license, contracts and installation in one query"
    assert log.commits == 0, "no BEGIN/COMMIT around a read"


@contextmanager
def driver_round_trips(engine: Engine) -> Iterator[list[str]]:
    """What reaches the driver in the block, below SQLAlchemy: every statement SQLite runs
    (BEGIN and COMMIT included), or every message PostgreSQL must answer (libpq's trace), on
    connections checked out of the pool or kept by reads (traced from their next statement)."""
    seen: list[str] = []
    traced: list[tuple[Any, str | None]] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if any(known is dbapi_connection for known, _ in traced):
            return
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(seen.append)
            traced.append((dbapi_connection, None))
        else:
            fd, path = tempfile.mkstemp(prefix="vigor-pqtrace-")
            dbapi_connection.pgconn.trace(fd)
            traced.append((dbapi_connection, path))

    def trace_kept(conn: Connection, *_statement: Any) -> None:
        trace(conn.connection.dbapi_connection, None, None)  # a read's kept connection

    event.listen(engine, "checkout", trace)
    event.listen(engine, "before_cursor_execute", trace_kept)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "before_cursor_execute", trace_kept)
        for dbapi_connection, path in traced:
            if path is None:
                dbapi_connection.set_trace_callback(None)
                continue
            dbapi_connection.pgconn.untrace()
            for line in Path(path).read_text().splitlines():
                parts = line.split("\t")
                if len(parts) > 3 and parts[1] == "F" and parts[3] in ("Query", "Sync"):
                    seen.append(parts[3])
            Path(path).unlink()


def test_download_urls_name_the_route_under_a_script_root(
    client: FlaskClient, scenario: dict[str, str]
) -> None:
    body = {
        "product": "acme-erp",
        "version": "1.0.0",
        "platform": "linux-x86_64",
        "installation_id": "installation-root-01",
        "nonce": secrets.token_hex(16),
    }
    headers = {"Authorization": f"License {scenario['active']}"}
    response = client.post(
        "/api/v1/check", json=body, headers=headers, base_url="http://localhost/vigor"
    )
    url = response.get_json()["signed"]["update"]["download"]["url"]
    with client.application.test_request_context("/", base_url="http://localhost/vigor"):
        token = url.rsplit("/", 1)[1]
        assert url.endswith(url_for("updates.download", token=token))
    assert "/vigor/api/v1/download/" in url


@pytest.mark.usefixtures("limits_in_memory")
def test_a_poll_is_one_round_trip_to_the_database(
    client: FlaskClient, services: Services, scenario: dict[str, str]
) -> None:
    inst = "installation-trip-0001"
    check(client, scenario["active"], installation_id=inst)  # registers it, loads the catalogue
    with services.db.sessions() as s:  # an admin signed in on the same client: no user load
        users.add_user(s, "ops@example.com", "correct horse battery", role="admin", actor="t")
    page = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert csrf is not None
    signed_in = client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": "correct horse battery",
            "csrf_token": csrf[1],
        },
    )
    assert signed_in.status_code == 303
    with driver_round_trips(services.db.engine) as trips:
        response, _ = check(client, scenario["active"], installation_id=inst)
    assert response.status_code == 200
    assert len(trips) == 1, trips
    if services.db.engine.dialect.name == "sqlite":
        assert trips[0].startswith("SELECT"), "no BEGIN, no COMMIT"


@pytest.mark.usefixtures("limits_in_memory")
def test_an_installation_is_written_when_it_changes_or_once_the_hour_is_up(
    client: FlaskClient, services: Services, scenario: dict[str, str]
) -> None:
    inst = "installation-move-0001"

    def recorded() -> tuple[str, str, datetime]:
        with services.db.sessions() as s:
            row = s.execute(
                select(Installation.version, Installation.channel, Installation.last_seen).where(
                    Installation.uid == inst
                )
            ).one()
        return row.version, row.channel, row.last_seen

    with SqlLog(services.db.engine) as log:
        assert check(client, scenario["active"], installation_id=inst)[0].status_code == 200
    assert "INSERT" in log.statements and log.commits == 1
    assert recorded()[:2] == ("1.0.0", "stable")
    with SqlLog(services.db.engine) as log:
        assert (
            check(client, scenario["active"], "1.1.0", installation_id=inst)[0].status_code == 200
        )
    assert "UPDATE" in log.statements and log.commits == 1
    assert recorded()[:2] == ("1.1.0", "stable")
    an_hour_ago = NOW - timedelta(hours=1, seconds=1)
    with services.db.sessions() as s:
        s.execute(
            update(Installation).where(Installation.uid == inst).values(last_seen=an_hour_ago)
        )
        s.commit()
    assert check(client, scenario["active"], "1.1.0", installation_id=inst)[0].status_code == 200
    assert recorded()[2] > an_hour_ago, "last seen refreshed once the hour is up"


def test_yanked_installed_release_gets_a_signed_notice(
    client: FlaskClient, services: Services, scenario: dict[str, str]
) -> None:
    with services.db.sessions() as s:
        releases.yank(
            s,
            releases.find_release(s, "acme-erp", "1.2.0"),
            reason="corrupts invoices",
            recommended_version="1.1.1",
            actor="t",
        )
    signed = verified(client, *check(client, scenario["active"], "1.2.0"))
    (notice,) = signed["notices"]
    assert notice["code"] == "yanked"
    assert notice["reason"] == "corrupts invoices"
    assert notice["recommended_version"] == "1.1.1"
    # And nobody is offered the yanked release.
    lapsed_between = verified(client, *check(client, scenario["active"], "1.1.1"))
    assert lapsed_between["update"]["version"] == "2.0.0"


def test_staged_rollout_halt_and_critical_bypass_of_staging(
    client: FlaskClient, services: Services, scenario: dict[str, str], tmp_path: Path
) -> None:
    with services.db.sessions() as s:
        releases.set_rollout(s, releases.find_release(s, "acme-erp", "2.0.0"), 0, actor="t")
    signed = verified(client, *check(client, scenario["active"], "1.0.0"))
    assert signed["update"]["version"] == "1.2.0"
    with services.db.sessions() as s:
        releases.set_rollout(s, releases.find_release(s, "acme-erp", "2.0.0"), 50, actor="t")
    offered = {
        (
            verified(
                client,
                *check(
                    client, scenario["active"], "1.2.0", installation_id=f"rollout-inst-{i:04d}"
                ),
            )["update"]
            or {}
        ).get("version")
        for i in range(40)
    }
    assert offered == {"2.0.0", None}, "half the installations, deterministically"
    make_release(
        services, tmp_path, "2.0.1", kind="security", severity="critical", published_at=ago(0)
    )
    with services.db.sessions() as s:
        releases.set_rollout(s, releases.find_release(s, "acme-erp", "2.0.1"), 10, actor="t")
    critical = {
        (
            verified(
                client,
                *check(
                    client, scenario["active"], "2.0.0", installation_id=f"critical-inst-{i:04d}"
                ),
            )["update"]
            or {}
        ).get("version")
        for i in range(20)
    }
    assert critical == {"2.0.1"}, "a critical revision skips the staging: everyone, at once"
    with services.db.sessions() as s:
        releases.set_rollout(s, releases.find_release(s, "acme-erp", "2.0.1"), 0, actor="t")
    halted = verified(client, *check(client, scenario["active"], "2.0.0"))
    assert halted["update"] is None, "but a halt (installs failing) stops even a critical revision"


# --------------------------------------------------------------------------- downloads


def offer_url(client: FlaskClient, key: str, version: str = "1.0.0") -> tuple[str, dict[str, Any]]:
    signed = verified(client, *check(client, key, version))
    download = signed["update"]["download"]
    return download["url"].removeprefix("http://localhost"), download


def fetch(
    client: FlaskClient, url: str, key: str | None, **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    """GET with the license ``key`` (if any) and close (file responses hold the artifact open
    until closed)."""
    if key is not None:
        headers["Authorization"] = f"License {key}"
    with client.get(url, headers=headers) as response:
        return response.status_code, response.get_data(), dict(response.headers)


def test_download_whole_and_ranged_with_etag(
    client: FlaskClient, scenario: dict[str, str], services: Services
) -> None:
    url, download = offer_url(client, scenario["active"])
    key = scenario["active"]
    status, data, headers = fetch(client, url, key)
    assert status == 200
    assert len(data) == download["size"]
    assert hashlib.sha256(data).hexdigest() == download["sha256"]
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{download["sha256"]}"'
    assert "Content-Encoding" not in headers
    status, part, part_headers = fetch(client, url, key, Range="bytes=100-")
    assert status == 206
    assert part == data[100:]
    assert part_headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert int(part_headers["Content-Length"]) == len(data) - 100
    status, stale, _ = fetch(
        client, url, key, **{"Range": "bytes=100-", "If-Range": '"somethingelse"'}
    )
    assert status == 200
    assert stale == data
    status, _, _ = fetch(client, url, key, **{"Range": "bytes=100-", "If-Range": headers["ETag"]})
    assert status == 206
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DownloadEvent)) == 4


def test_tampered_expired_and_unentitled_downloads_are_refused(
    client: FlaskClient, scenario: dict[str, str], services: Services, app: Flask
) -> None:
    url, _ = offer_url(client, scenario["active"])
    tampered = client.get(url[:-3] + ("BBB" if url.endswith("AAA") else "AAA"))
    assert tampered.status_code == 403
    assert tampered.get_json()["error"]["code"] == "download_invalid"
    from server.domain.download_links import DownloadGrant, make_token

    expired_app_secret = services.settings.secret_key
    token = make_token(expired_app_secret, DownloadGrant(1, 1))
    import time

    services.settings = services.settings.with_(download_url_ttl=10)
    original = time.time
    try:
        time.time = lambda: original() + 3600  # type: ignore[assignment]
        expired = client.get(f"/api/v1/download/{token}")
    finally:
        time.time = original  # type: ignore[assignment]
    assert expired.status_code == 410
    assert expired.get_json()["error"]["code"] == "download_expired"
    # A lapsed customer handed a link to a release after its cutoff (e.g. a leaked URL) is refused.
    with services.db.sessions() as s:
        lapsed = customers.find_license(s, scenario["lapsed"])
        artifact = releases.find_release(s, "acme-erp", "2.0.0").artifacts[0]
        token = make_token(services.settings.secret_key, DownloadGrant(lapsed.id, artifact.id))
    refused = client.get(
        f"/api/v1/download/{token}", headers={"Authorization": f"License {scenario['lapsed']}"}
    )
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "not_entitled"


def test_a_download_link_works_only_with_the_license_it_was_handed_to(
    client: FlaskClient, scenario: dict[str, str], services: Services
) -> None:
    url, download = offer_url(client, scenario["active"])
    with services.db.sessions() as s:
        before = s.scalar(select(func.count()).select_from(DownloadEvent))
    # Shared with another customer (here a lapsed one, whose own key is valid), or with anyone.
    for key, code in (
        (scenario["lapsed"], "download_wrong_license"),
        (None, "download_license_required"),
    ):
        status, body, headers = fetch(client, url, key)
        assert status == 403, key
        assert json.loads(body)["error"]["code"] == code
        assert download["sha256"] not in headers.get("ETag", "")
    bearer = client.get(url, headers={"Authorization": "Bearer " + scenario["active"]})
    assert bearer.status_code == 403, "the key must come as a license, not as any bearer"
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DownloadEvent)) == before
    status, data, _ = fetch(client, url, scenario["active"])
    assert status == 200
    assert hashlib.sha256(data).hexdigest() == download["sha256"]


def test_revoking_a_license_kills_its_outstanding_links(
    client: FlaskClient, scenario: dict[str, str], services: Services
) -> None:
    url, _ = offer_url(client, scenario["active"])
    assert fetch(client, url, scenario["active"])[0] == 200
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, scenario["active"]), "revoked", actor="t"
        )
    assert fetch(client, url, scenario["active"])[0] == 403


# --------------------------------------------------------------------------- reports


def report(client: FlaskClient, key: str, outcome: str, inst: str, version: str = "2.0.0") -> Any:
    return client.post(
        "/api/v1/report",
        headers={"Authorization": f"License {key}"},
        json={
            "installation_id": inst,
            "product": "acme-erp",
            "version": version,
            "from_version": "1.2.0",
            "outcome": outcome,
            "code": "health_check_failed" if outcome != "success" else None,
        },
    )


def test_failures_past_the_threshold_halt_the_rollout(
    client: FlaskClient, scenario: dict[str, str], services: Services
) -> None:
    key = scenario["active"]
    for i in range(3):
        assert report(client, key, "success", f"report-inst-ok-{i:04d}").status_code == 202
    assert report(client, key, "failure", "report-inst-bad-0001").status_code == 202
    with services.db.sessions() as s:
        assert releases.find_release(s, "acme-erp", "2.0.0").rollout_percent == 100
    assert report(client, key, "rolled_back", "report-inst-bad-0002").status_code == 202
    with services.db.sessions() as s:
        assert releases.find_release(s, "acme-erp", "2.0.0").rollout_percent == 0
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "rollout.halt"))
        assert event is not None and event.actor == "system"
        assert event.details["failed"] == 2 and event.details["reported"] == 5
    signed = verified(client, *check(client, key, "1.2.0"))
    assert signed["update"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "exploded"}, "outcome"),
        ({"version": "nope nope"}, "version"),
        ({"installation_id": "x"}, "installation_id"),
    ],
)
def test_malformed_reports_name_the_field(
    client: FlaskClient, scenario: dict[str, str], change: dict, field: str
) -> None:
    body = {
        "installation_id": "report-inst-0000001",
        "product": "acme-erp",
        "version": "2.0.0",
        "outcome": "success",
        **change,
    }
    response = client.post(
        "/api/v1/report", headers={"Authorization": f"License {scenario['active']}"}, json=body
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_report_for_unknown_version_is_404(client: FlaskClient, scenario: dict[str, str]) -> None:
    assert (
        report(
            client, scenario["active"], "success", "report-inst-0000009", version="9.9.9"
        ).status_code
        == 404
    )


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_answers_429_with_retry_after(scenario: dict[str, str], settings: Any) -> None:
    with vigor_app(settings.with_(rate_limit_check="3/minute")) as app:
        client = app.test_client()
        codes = [check(client, scenario["active"])[0].status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited, _ = check(client, scenario["active"])
        assert limited.status_code == 429
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        elsewhere = app.test_client()
        elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
        moved, _ = check(elsewhere, scenario["active"])
        assert moved.status_code == 429, "the license is counted wherever it calls from"
        other, _ = check(elsewhere, scenario["expiring"])
        assert other.status_code == 200, "another license from another address is not"
        assert other.headers["X-RateLimit-Limit"] == "3"
        assert other.headers["X-RateLimit-Remaining"] == "2", "the license's count is the tighter"


def test_an_office_behind_one_address_is_limited_per_license_not_by_its_address(
    scenario: dict[str, str], settings: Any
) -> None:
    """One NAT address, the installations of four licenses: each license reaches its own limit;
    the address's default limit is far from reached."""
    with vigor_app(settings.with_(rate_limit_check="3/minute")) as app:
        office = app.test_client()
        keys = [scenario[c] for c in ("active", "expiring", "lapsed", "renewed")]
        codes = [check(office, key)[0].status_code for key in keys for _ in range(3)]
        assert codes == [200] * 12
        assert check(office, scenario["active"])[0].status_code == 429


def test_rate_limit_counts_every_license_of_one_address(
    scenario: dict[str, str], settings: Any
) -> None:
    with vigor_app(settings.with_(rate_limit_check_address="3/minute")) as app:
        client = app.test_client()
        keys = [scenario[c] for c in ("active", "expiring", "lapsed")]
        assert [check(client, key)[0].status_code for key in keys] == [200, 200, 200]
        limited, _ = check(client, scenario["renewed"])
        assert limited.status_code == 429, "one address cannot poll past its limit with many keys"
        assert int(limited.headers["Retry-After"]) > 0
        elsewhere = app.test_client()
        elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
        assert check(elsewhere, scenario["renewed"])[0].status_code == 200


def test_carve_out_release_offered_after_a_lapse_can_be_downloaded(
    client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    make_product(services, security_carveout_months=6)
    make_release(services, tmp_path, "1.0.0", published_at=ago(300))
    make_release(
        services, tmp_path, "1.0.1", kind="security", severity="serious", published_at=ago(20)
    )
    make_customer(services, "lapsed-carve", ("maintenance", days(-400), days(-60)))
    key = make_license(services, "lapsed-carve")
    signed = verified(client, *check(client, key, "1.0.0"))
    assert signed["entitlement"]["status"] == "lapsed"
    assert signed["update"]["version"] == "1.0.1", "the carve-out reaches lapsed customers"
    url = signed["update"]["download"]["url"].removeprefix("http://localhost")
    status, data, _ = fetch(client, url, key)
    assert status == 200
    assert hashlib.sha256(data).hexdigest() == signed["update"]["download"]["sha256"]


@pytest.mark.parametrize(
    ("setting", "accept", "language", "says"),
    [
        ("", None, "en", "Renew maintenance to receive"),
        ("", "es-ES,es;q=0.9", "es", "Renueve el mantenimiento para recibir"),
        ("", "fr-FR", "en", "Renew maintenance to receive"),
        ("es", None, "es", "Renueve el mantenimiento para recibir"),
        ("en", "es", "en", "Renew maintenance to receive"),  # the vendor's setting wins
    ],
)
def test_messages_speak_the_customer_s_language(
    client: FlaskClient,
    services: Services,
    tmp_path: Path,
    setting: str,
    accept: str | None,
    language: str,
    says: str,
) -> None:
    make_product(services)
    make_release(services, tmp_path, "1.0.0", published_at=ago(400))
    make_release(services, tmp_path, "1.1.0", published_at=ago(10))
    with services.db.sessions() as s:
        customer = customers.add_customer(s, "cliente", "Cliente", actor="t", language=setting)
        customers.add_contract(s, customer, "maintenance", days(-500), days(-100), actor="t")
    key = make_license(services, "cliente")
    with services.db.sessions() as s:
        releases.yank(
            s,
            releases.find_release(s, "acme-erp", "1.0.0"),
            reason="breaks payroll",
            recommended_version=None,
            actor="t",
        )
    body = {
        "product": "acme-erp",
        "version": "1.0.0",
        "platform": "linux-x86_64",
        "installation_id": "inst-" + secrets.token_hex(8),
        "nonce": secrets.token_hex(16),
    }
    headers = {"Authorization": f"License {key}"}
    if accept:
        headers["Accept-Language"] = accept
    signed = verified(client, client.post("/api/v1/check", json=body, headers=headers), body)
    assert signed["language"] == language
    assert signed["renewal"]["message"].startswith(says)
    assert signed["entitlement"]["status"] == "lapsed"
    assert signed["entitlement"]["message"].startswith(
        "El mantenimiento terminó el" if language == "es" else "Maintenance ended on"
    )
    assert signed["notices"][0]["code"] == "yanked", "codes do not change with the language"
    assert "breaks payroll" in signed["notices"][0]["message"]


def test_under_the_revoke_policy_a_lapsed_license_is_told_no_cutoff(
    app: Flask, client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    """Nothing is entitled once lapsed under ``revoke``: the signed answer and the offline
    bundle's statement both say ``cutoff: null`` (docs/protocol.md), not the end of coverage."""
    make_product(services, lapse_policy="revoke")
    make_release(services, tmp_path, "1.0.0", kind="version", published_at=ago(400))
    make_release(services, tmp_path, "1.1.0", published_at=ago(200))
    make_customer(services, "lapsed", ("maintenance", days(-500), days(-150)))
    make_customer(services, "active", ("maintenance", days(-300), days(200)))
    lapsed, active = make_license(services, "lapsed"), make_license(services, "active")

    signed = verified(client, *check(client, lapsed))
    assert signed["entitlement"]["status"] == "lapsed"
    assert signed["entitlement"]["maintenance_ends_on"] == days(-150).isoformat()
    assert signed["entitlement"]["cutoff"] is None
    assert signed["update"] is None
    still = verified(client, *check(client, active))
    assert still["entitlement"]["cutoff"] is not None, "revoke takes nothing before a lapse"

    root = verify_root(client.get("/api/v1/root.json").get_json(), None)
    for key, cutoff_given in ((lapsed, False), (active, True)):
        out = tmp_path / f"{key[:12]}.tar"
        result = app.test_cli_runner().invoke(
            cli, args=["bundle", "export", "--license", key, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        with tarfile.open(out) as tar:
            member = tar.extractfile("bundle.json")
            assert member is not None
            statement = json.loads(member.read())
        verify_role(statement, root, "check", "bundle")
        assert (statement["signed"]["entitlement"]["cutoff"] is not None) == cutoff_given
