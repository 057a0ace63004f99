"""The database seam: fast reads match SQLAlchemy's; stale pooled connections are replaced."""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from server.db import Database
from server.db import engine as db_module
from server.db.fast_read import FastRead
from server.db.licenses import LICENSE_BY_KEY_HASH, LicenseReads
from server.domain.facts import ContractFacts
from server.domain.models import Installation, License
from server.domain.secrets import secret_hash
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product


def _drop_pooled_connection(url: str, db: Database) -> None:
    """The server ends the one connection ``db`` pools (as a restart or a firewall would)."""
    with db.reading() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    other = Database(url)
    with other.reading() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    other.dispose()


@pytest.mark.parametrize("idle_ping", [True, False], ids=["idle", "busy"])
def test_a_connection_dropped_while_idle_is_pinged_and_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping: bool
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite files have no server to drop a connection")
    db = Database(database_url)
    try:
        _drop_pooled_connection(database_url, db)
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0 if idle_ping else 3600.0)
        if idle_ping:
            with db.reading() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        else:  # a connection in use moments ago is trusted: no round trip spent on a ping
            with pytest.raises(OperationalError), db.reading() as conn:
                conn.execute(text("SELECT 1"))
            with db.reading() as conn:  # the failure invalidated the pool; the next one works
                assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_a_fast_read_gives_the_rows_and_types_connection_execute_gives(
    services: Services,
) -> None:
    make_product(services)
    make_customer(
        services,
        "typed",
        ("maintenance", date(2025, 1, 1), date(2025, 12, 31)),
        ("customization", date(2025, 6, 1), date(2026, 5, 31)),
    )
    key = make_license(services, "typed")
    seen = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    with services.db.session() as s:
        license_id = s.scalar(select(License.id))
        s.add(
            Installation(
                license_id=license_id,
                uid="typed-installation-01",
                version="1.0.0",
                platform="linux-x86_64",
                channel="stable",
                first_seen=seen,
                last_seen=seen,
            )
        )
    params = {"key_hash": secret_hash(key), "uid": "typed-installation-01"}
    with services.db.reading() as conn:
        fast = LICENSE_BY_KEY_HASH.all(conn, params)
        slow = [tuple(row) for row in conn.execute(LICENSE_BY_KEY_HASH.statement, params)]
    assert sorted(fast, key=repr) == sorted(slow, key=repr)
    with services.db.reading() as conn:
        licenses = License.__table__
        bound_in = FastRead(
            select(licenses.c.status).where(licenses.c.id > 0, licenses.c.id < 10**6)
        )
        assert bound_in.all(conn, {}) == [("active",)], "values bound in the statement itself"
    assert len(fast) == 2, "one row per contract"
    assert {row[12] for row in fast} == {seen}, "an aware UTC time, as the model type reads it"
    assert {row[15] for row in fast} == {date(2025, 1, 1), date(2025, 6, 1)}


def test_a_fast_read_on_a_dropped_connection_fails_like_any_query_and_recovers(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite files have no server to drop a connection")
    db = Database(database_url)
    count = FastRead(select(func.count()).select_from(License.__table__))
    try:
        _drop_pooled_connection(database_url, db)
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
        with pytest.raises(OperationalError) as raised, db.reading() as conn:
            count.all(conn, {})
        assert raised.value.connection_invalidated, "SQLAlchemy saw the drop"
        with db.reading() as conn:
            assert count.all(conn, {}) == [(0,)]
    finally:
        db.dispose()


def test_the_checks_license_read_takes_the_fast_path_and_matches_the_domain_view(
    services: Services,
) -> None:
    """Fails when the fast path falls back to SQLAlchemy's execution layer (a new SQLAlchemy or
    driver that changed what FastRead relies on): every check would then cost the slow path."""
    make_product(services)
    make_customer(services, "fast", ("maintenance", date(2025, 1, 1), date(2025, 12, 31)))
    key = make_license(services, "fast")
    contexts: list[object] = []

    def _seen(*args: object) -> None:
        contexts.append(args[4])  # the execution context: None on the driver's cursor

    fallbacks = LICENSE_BY_KEY_HASH.fallbacks
    event.listen(services.db.engine, "before_cursor_execute", _seen)
    try:
        view = LicenseReads(services.db).by_key_hash(secret_hash(key), "no-such-installation-1")
    finally:
        event.remove(services.db.engine, "before_cursor_execute", _seen)
    assert LICENSE_BY_KEY_HASH.fallbacks == fallbacks, "the fast read fell back"
    assert contexts == [None], "one statement, run on the driver's cursor"
    assert view is not None
    assert (view.status, view.product_slug, view.customer_slug) == ("active", "acme-erp", "fast")
    assert view.contracts == (
        ContractFacts("maintenance", "acme-erp", date(2025, 1, 1), date(2025, 12, 31)),
    )
    assert view.installation is None
    with services.db.session() as s:
        assert LicenseReads(s).by_key_hash(secret_hash(key), "no-such-installation-1") == view
        assert LicenseReads(s).by_key_hash(secret_hash("vgl_unknown"), None) is None


def test_a_fast_read_that_falls_back_is_counted_and_logged(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    broken = FastRead(select(text("no_such_column")).select_from(License.__table__))
    with pytest.raises(DBAPIError), services.db.reading() as conn:
        broken.all(conn, {})
    assert broken.fallbacks == 1
    assert "fast read failed at the driver" in caplog.text


def _connection_id(conn: Connection) -> int:
    """Which connection the database sees (a PostgreSQL backend; a SQLite driver connection)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return id(conn.connection.dbapi_connection)


def test_reads_keep_their_connections_and_give_them_up_on_dispose(database_url: str) -> None:
    db = Database(database_url)
    opened: list[object] = []
    event.listen(db.engine, "connect", lambda dbapi_connection, _record: opened.append(1))
    try:
        with db.reading() as conn:
            first = _connection_id(conn)
        with db.reading() as conn:
            assert _connection_id(conn) == first, "the next read has the same connection"
        assert db.engine.pool.checkedout() == 1, "kept out of the pool between reads"  # type: ignore[attr-defined]
        size = db.engine.pool.size()  # type: ignore[attr-defined]
        with ExitStack() as reads:
            at_once = [reads.enter_context(db.reading()) for _ in range(size + 2)]
            assert len({_connection_id(conn) for conn in at_once}) == size + 2, "one each"
        assert db.engine.pool.checkedout() == size, "no more kept than the pool's size"  # type: ignore[attr-defined]
        assert len(opened) == size + 2
        db.dispose()
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with db.reading() as conn:
            assert _connection_id(conn) != first, "a new connection after dispose"
    finally:
        db.dispose()


def test_a_read_that_fails_is_not_kept_and_the_next_one_works(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.reading() as conn:
            conn.execute(text("SELECT count(*) FROM licenses"))
        with pytest.raises(DBAPIError), db.reading() as failed:
            failed.execute(text("SELECT no_such_column FROM licenses"))
        assert failed.closed, "given back to the pool, not kept"
        with db.reading() as conn:
            assert conn is not failed
            assert conn.execute(text("SELECT count(*) FROM licenses")).scalar_one() == 0
    finally:
        db.dispose()


def test_after_a_dropped_connection_no_other_kept_one_fails_a_read(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restart drops every connection: one read fails (as with SQLAlchemy's pool, no
    ping spent on busy connections), and the others kept are dropped with it, not each failing
    a read of its own."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite files have no server to drop a connection")
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
    db, other = Database(database_url), Database(database_url)
    try:
        with ExitStack() as reads:
            pids = [_connection_id(reads.enter_context(db.reading())) for _ in range(3)]
        with other.reading() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError), db.reading() as conn:
            conn.execute(text("SELECT 1"))
        for _ in range(3):
            with db.reading() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
                assert _connection_id(conn) not in pids
    finally:
        db.dispose()
        other.dispose()


def test_a_forked_process_reads_on_connections_of_its_own(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.reading() as conn:
            parents = _connection_id(conn)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report the connection its read used, then leave at once
            try:
                with db.reading() as conn:
                    os.write(write_end, str(_connection_id(conn)).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end) as report:
            childs = report.read()
        assert childs and int(childs) != parents
        with db.reading() as conn:  # and the parent's is still good
            assert _connection_id(conn) == parents
            assert conn.execute(text("SELECT count(*) FROM licenses")).scalar_one() == 0
    finally:
        db.dispose()
