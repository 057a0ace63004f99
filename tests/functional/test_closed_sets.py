"""The database holds the vocabulary's closed sets (CHECK constraints, migration 0005): a value
outside a set is refused whoever writes it, every value inside is accepted, and the ORM stores
the values (not the members' names) and reads members back. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from server.db import Database
from server.domain.models import License
from server.domain.vocabulary import (
    ApplyOutcome,
    ContractKind,
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    ReleaseKind,
    Role,
    Severity,
    values,
)
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product
from tests.common.rows import ROWS_AT_HEAD as ROWS
from tests.common.rows import insert_rows

# (table, column, the set it holds, a value outside it). The unique columns of each table get a
# fresh value when a row is copied (so that only the closed set can refuse the copy).
CLOSED_SETS: list[tuple[str, str, type[StrEnum], str]] = [
    ("products", "lapse_policy", LapsePolicy, "lenient"),
    ("product_lines", "status", LineStatus, "archived"),
    ("releases", "kind", ReleaseKind, "hotfix"),
    ("releases", "severity", Severity, "moderate"),
    ("contracts", "kind", ContractKind, "support"),
    ("licenses", "status", LicenseStatus, "archived"),
    ("admin_users", "role", Role, "owner"),
    ("api_tokens", "role", Role, "Admin"),  # the sets are case-sensitive
    ("apply_reports", "outcome", ApplyOutcome, "SUCCESS"),  # a member's name is not its value
]
UNIQUE = {
    "products": "slug",
    "product_lines": "name",
    "releases": "version",
    "licenses": "key_hash",
    "admin_users": "email",
    "api_tokens": "token_hash",
}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    with database.engine.begin() as conn:
        insert_rows(conn, ROWS)
    yield database
    database.dispose()


def _copy(table: str, column: str, value: str, n: int) -> dict[str, Any]:
    """Row 1 of ``table`` under a new id (and new unique values), with ``column`` = ``value``."""
    row = {**ROWS[table][0], "id": 100 + n, column: value}
    if table in UNIQUE:  # as long as the original, to fit its column
        original = row[UNIQUE[table]]
        row[UNIQUE[table]] = f"c{n}-{original}"[: len(original)]
    return row


def _read(db: Database, table: str, column: str) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT {column} FROM {table} WHERE id = 1")).scalar_one()  # noqa: S608 - names from CLOSED_SETS


@pytest.mark.parametrize(("table", "column", "vocabulary", "outside"), CLOSED_SETS)
def test_a_value_outside_the_set_is_refused_and_every_value_in_it_accepted(
    db: Database, table: str, column: str, vocabulary: type[StrEnum], outside: str
) -> None:
    before = _read(db, table, column)
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), db.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = 1"), {"v": outside})  # noqa: S608
    assert _read(db, table, column) == before, "nothing changed"
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), db.engine.begin() as conn:
        insert_rows(conn, {table: [_copy(table, column, outside, 0)]})

    for n, value in enumerate(values(vocabulary), start=1):
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = 1"), {"v": value})  # noqa: S608
            insert_rows(conn, {table: [_copy(table, column, value, n)]})
        assert _read(db, table, column) == value


def test_a_release_has_no_severity_or_one_from_the_set(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE releases SET severity = NULL WHERE id = 2"))
        assert conn.scalar(text("SELECT severity FROM releases WHERE id = 2")) is None


@pytest.mark.parametrize(
    ("percent", "accepted"), [(-1, False), (0, True), (100, True), (101, False)]
)
def test_rollout_percent_stays_between_0_and_100(
    db: Database, percent: int, accepted: bool
) -> None:
    statement = text("UPDATE releases SET rollout_percent = :p WHERE id = 1")
    if accepted:
        with db.engine.begin() as conn:
            conn.execute(statement, {"p": percent})
        assert _read(db, "releases", "rollout_percent") == percent
    else:
        with (
            pytest.raises(IntegrityError, match="ck_releases_rollout_percent"),
            db.engine.begin() as conn,
        ):
            conn.execute(statement, {"p": percent})
        assert _read(db, "releases", "rollout_percent") == 100


def test_the_orm_stores_the_strings_and_reads_back_members(services: Services) -> None:
    make_product(services)
    make_customer(services, "initech")
    make_license(services, "initech")
    with services.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT status FROM licenses")).scalar_one()
    assert type(stored) is str and stored == "active", "the value, not the member's name"
    with services.db.session() as s:
        lic = s.scalars(select(License)).one()
        assert lic.status is LicenseStatus.ACTIVE
        assert lic.status == "active", "a member compares equal to its string"
        lic.status = "archived"  # type: ignore[assignment]  # what a typo would do
        with pytest.raises(IntegrityError, match="ck_licenses_status"):
            s.flush()
        s.rollback()
    with services.db.session() as s:
        assert s.scalars(select(License.status)).one() is LicenseStatus.ACTIVE, "nothing changed"
