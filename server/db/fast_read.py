"""Reads run straight on the driver's cursor, for the statement every update check makes.

:class:`FastRead` relies on SQLAlchemy's compiled-statement internals (``positiontup``, ``binds``,
the types' bind and result processors, the connection's event dispatch); pyproject.toml bounds
SQLAlchemy's version for that reason, and ``tests/functional/test_database.py`` fails if the fast
path stops being taken or stops returning what ``Connection.execute`` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Select

log = logging.getLogger(__name__)


class FastRead:
    """A SELECT run straight on the driver's cursor: compiled once per dialect, its rows
    converted by the selected columns' SQLAlchemy types, as ``Connection.execute`` would.

    For the one query every update check makes, where SQLAlchemy's execution layer (execution
    context, result metadata from ``cursor.description``) costs more than the query: about
    65 µs of client CPU on PostgreSQL against 30 µs for psycopg to send it and read the rows
    (13 µs against 9 µs on SQLite). ``before/after_cursor_execute`` listeners still see it
    (with no execution context). A driver error is retried once through ``Connection.execute``,
    which wraps it and replaces a dropped connection exactly as for any other statement; each
    such fall-back is counted in :attr:`fallbacks` and logged, never silent (a driver that kept
    refusing the fast SQL would otherwise cost every check the slow path unnoticed).
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self.fallbacks = 0  # driver errors retried through Connection.execute, since start
        self._plans: dict[str, _ReadPlan] = {}

    def all(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Every row, as tuples of converted values."""
        dialect = conn.dialect
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _ReadPlan(self.statement, dialect)
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        parameters = plan.parameters(params)
        dispatch = conn.dispatch
        try:
            cursor = dbapi_connection.cursor()
            try:
                if dispatch.before_cursor_execute:
                    dispatch.before_cursor_execute(conn, cursor, plan.sql, parameters, None, False)
                cursor.execute(plan.sql, parameters)
                rows = cursor.fetchall()
                if dispatch.after_cursor_execute:
                    dispatch.after_cursor_execute(conn, cursor, plan.sql, parameters, None, False)
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            self.fallbacks += 1
            log.warning("fast read failed at the driver (%s); retried through SQLAlchemy", exc)
            return [tuple(row) for row in conn.execute(self.statement, params)]
        return plan.convert(rows)


class _ReadPlan:
    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Values bound in the statement itself (``column > 0``); the caller gives the rest.
        self.defaults = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        self.binders = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self.converters = [
            (index, processor)
            for index, column in enumerate(statement.selected_columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
            is not None
        ]

    def parameters(self, params: dict[str, Any]) -> Any:
        if self.defaults:
            params = {**self.defaults, **params}
        if self.binders:
            params = {k: self.binders[k](v) if k in self.binders else v for k, v in params.items()}
        if self.positions is not None:
            return tuple(params[name] for name in self.positions)
        return params

    def convert(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self.converters:
            return [tuple(row) for row in rows]
        converted = []
        for row in rows:
            values = list(row)
            for index, processor in self.converters:
                values[index] = processor(values[index])
            converted.append(tuple(values))
        return converted
