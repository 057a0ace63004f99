"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and
migration 0005 puts its CHECK constraints on a database that holds data without losing any."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, Enum, text
from sqlalchemy.exc import IntegrityError

from server.db import Database
from server.domain.models import Base, License
from server.domain.vocabulary import LicenseStatus, values
from tests.common.rows import ROWS, check_constraints, insert_rows, schema_shape, table_contents

BEFORE_CHECKS = "0004"
CHECKS_ADDED = "0005"  # the data tests stop there: later migrations add tables of their own
# CHECK constraints later migrations add with their columns and tables.
LATER_CHECKS = {"ck_patches_format", "ck_patch_skips_reason"}


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


def _literals(condition: str) -> list[str]:
    """The quoted strings and the integers of a CHECK condition, in order: what it allows,
    whichever way the database words it (PostgreSQL rewrites ``IN`` as ``= ANY (ARRAY[...])``)."""
    return [quoted or number for quoted, number in re.findall(r"'([^']*)'|\b(\d+)\b", condition)]


def _model_checks(only_tables: object = None) -> dict[str, str]:
    """The models' CHECK constraints: name → condition, as SQL with its values written in
    (of the tables in ``only_tables`` when given: a migration's tables)."""
    return {
        str(constraint.name): str(
            constraint.sqltext.compile(compile_kwargs={"literal_binds": True})
        )
        for table in Base.metadata.sorted_tables
        if only_tables is None or table.name in only_tables  # type: ignore[operator]
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


def test_the_migrations_build_the_check_constraints_the_models_declare(database_url: str) -> None:
    """compare_metadata does not compare CHECK constraints: same names, same values allowed."""
    db = Database(database_url)
    try:
        db.upgrade()
        with db.engine.connect() as conn:
            built = check_constraints(conn)
    finally:
        db.dispose()
    declared = _model_checks()
    assert set(built) == set(declared)
    for name, condition in declared.items():
        assert _literals(built[name]) == _literals(condition), name


def test_every_closed_set_column_is_typed_by_its_vocabulary() -> None:
    """Each Enum column's CHECK lists exactly its StrEnum's values (a member added to the
    vocabulary without a migration fails the test above through this)."""
    declared = _model_checks()
    enum_columns = [
        (table.name, column.name, column.type)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Enum)
    ]
    assert len(enum_columns) == 17  # emails.kind, emails.state; webhook event and delivery sets
    # Sets with longer names were made (or widened, migration 0010) to 32 characters.
    wider = {("jobs", "kind"), ("webhook_events", "type")}
    for table, column, enum_type in enum_columns:
        assert enum_type.enum_class is not None
        assert enum_type.length == (32 if (table, column) in wider else 16), (table, column)
        assert _literals(declared[f"ck_{table}_{column}"]) == values(enum_type.enum_class)


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _snapshot(db: Database) -> tuple[object, ...]:
    with db.engine.connect() as conn:
        return table_contents(conn), schema_shape(conn), check_constraints(conn), _revision(conn)


def test_upgrading_a_database_that_holds_data_keeps_every_row_key_and_index(
    empty_database_url: str,
) -> None:
    db = Database(empty_database_url)
    try:
        command.upgrade(db.alembic_config(), BEFORE_CHECKS)
        with db.engine.begin() as conn:
            insert_rows(conn)
        rows, shape, checks, _ = _snapshot(db)
        assert checks == {}
        assert all(rows[table] for table in ROWS), "every table holds rows"

        command.upgrade(db.alembic_config(), CHECKS_ADDED)

        rows_after, shape_after, checks_after, revision = _snapshot(db)
        assert revision == CHECKS_ADDED
        assert rows_after == rows, "every row, every value"
        assert shape_after == shape, "columns, primary and foreign keys, uniques, indexes"
        assert set(checks_after) == set(_model_checks(ROWS)) - LATER_CHECKS
        with db.session() as s:  # the rows read back as the vocabulary's members
            assert s.get(License, 2).status is LicenseStatus.SUSPENDED  # type: ignore[union-attr]
        # The foreign keys of the recreated tables still hold and still cascade.
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("UPDATE artifacts SET release_id = 99 WHERE id = 1"))
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM licenses WHERE id = 1"))
        with db.engine.connect() as conn:
            for child in ("installations", "download_events", "apply_reports"):
                ids = conn.execute(text(f"SELECT license_id FROM {child}")).scalars().all()  # noqa: S608
                assert 1 not in ids, f"{child} of the deleted license are gone (ON DELETE CASCADE)"
        # And the new constraints hold.
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("UPDATE licenses SET status = 'archived' WHERE id = 2"))
    finally:
        db.dispose()


def _tables_of_0004(per_table: Any) -> dict[str, Any]:
    """What a snapshot says of the tables a database at 0004 has (later ones go on downgrade)."""
    return {t: value for t, value in per_table.items() if t in ROWS or t == "alembic_version"}


def test_downgrading_removes_the_checks_and_keeps_the_data(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        command.downgrade(db.alembic_config(), CHECKS_ADDED)
        with db.engine.begin() as conn:
            insert_rows(conn)
        rows, shape = (_tables_of_0004(part) for part in _snapshot(db)[:2])

        command.downgrade(db.alembic_config(), BEFORE_CHECKS)

        assert _snapshot(db) == (rows, shape, {}, BEFORE_CHECKS)
        with db.engine.begin() as conn:  # nothing refuses a value outside the set any more
            conn.execute(text("UPDATE licenses SET status = 'archived' WHERE id = 2"))
            conn.execute(text("UPDATE licenses SET status = 'suspended' WHERE id = 2"))
        command.upgrade(db.alembic_config(), CHECKS_ADDED)  # and back up again
        assert _tables_of_0004(_snapshot(db)[0]) == rows
        assert set(_snapshot(db)[2]) == set(_model_checks(ROWS)) - LATER_CHECKS
    finally:
        db.dispose()


def test_an_upgrade_refused_by_a_value_outside_a_set_changes_nothing(
    empty_database_url: str,
) -> None:
    """A row the new constraints would refuse (the last table migrated, so that every other
    table was already recreated) stops the upgrade, and the database is left as it was."""
    db = Database(empty_database_url)
    try:
        command.upgrade(db.alembic_config(), BEFORE_CHECKS)
        reports = [{**ROWS["apply_reports"][0], "id": 9, "outcome": "crashed"}]
        with db.engine.begin() as conn:
            insert_rows(conn)
            insert_rows(conn, {"apply_reports": reports})
        before = _snapshot(db)

        with pytest.raises(IntegrityError):
            db.upgrade()

        assert _snapshot(db) == before, "same rows, same tables (no temporary copy), no checks"
    finally:
        db.dispose()


def test_an_upgrade_that_would_leave_a_broken_foreign_key_changes_nothing(
    empty_database_url: str,
) -> None:
    """SQLite migrates with foreign keys off, so it checks them all before committing: a row
    whose parent is gone (here one the database already held) stops the upgrade."""
    if not empty_database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL enforces foreign keys throughout")
    db = Database(empty_database_url)
    try:
        command.upgrade(db.alembic_config(), BEFORE_CHECKS)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            insert_rows(conn)
            conn.execute(text("DELETE FROM releases WHERE id = 1"))  # artifact 1 is left behind
            conn.commit()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        before = _snapshot(db)

        with pytest.raises(RuntimeError, match="foreign keys do not hold"):
            db.upgrade()

        assert _snapshot(db) == before
    finally:
        db.dispose()
