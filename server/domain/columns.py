"""Column types every model uses: aware UTC times on every database, and closed sets held by
CHECK constraints."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, TypeDecorator
from sqlalchemy.engine import Dialect

from server.domain.vocabulary import values


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def one_of(enum: type[StrEnum], column: str, length: int = 16) -> Enum:
    """The column type of a closed set: a VARCHAR(16) holding the members' values (the strings
    existing databases hold), held there by a CHECK constraint named ``ck_<table>_<column>``;
    reads give back the enum's members, which compare equal to their strings.

    A string outside the set is not refused here but by the database (``IntegrityError``): the
    constraint is the one guard, for the ORM and for raw SQL alike. Migration 0005 added the
    constraints with their value lists written out; a new member needs a migration too.
    ``length`` is wider for a set whose values are longer (the job kinds, migration 0010).
    """
    return Enum(
        enum,
        name=column,
        native_enum=False,
        create_constraint=True,
        values_callable=values,
        length=length,
    )
