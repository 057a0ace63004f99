"""Alembic environment: runs on the engine Vigor hands over (see server.db.Database).

On SQLite, where batch mode recreates a table to change it (copy, drop, rename), the migrations
run with foreign key enforcement off: dropping the old table would otherwise delete, by cascade,
every row that refers to it (or refuse to). They also run in one explicit transaction, DDL
included (pysqlite would commit each CREATE TABLE on its own), so a migration that fails leaves
the database as it was; before it commits, every foreign key is checked.
"""

from __future__ import annotations

from alembic import context
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from server.domain.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _run_on_sqlite(connection: Connection) -> None:
    # PRAGMA foreign_keys is a no-op inside a transaction: set it before BEGIN, restore it after.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN")
            before = _revision(connection)
            _run(connection)
            # A scan of every key: only when a migration ran (not on every `vigor init`).
            if _revision(connection) != before:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(
                        f"foreign keys do not hold after migrating; nothing was changed: "
                        f"(table, rowid, parent, key) {[tuple(row) for row in broken[:5]]}"
                    )
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


engine = context.config.attributes["engine"]
with engine.connect() as conn:
    if conn.dialect.name == "sqlite":
        _run_on_sqlite(conn)
    else:
        with conn.begin():
            _run(conn)
