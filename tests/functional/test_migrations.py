"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.db import Database
from server.domain.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        assert db.is_current()
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        db.upgrade()  # idempotent: `vigor init` twice changes nothing
    finally:
        db.dispose()
