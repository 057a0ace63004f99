"""The database seam: pooled connections that went stale while idle are replaced, not failed."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from server import db as db_module
from server.db import Database


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
