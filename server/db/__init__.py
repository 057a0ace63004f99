"""Infrastructure: the database engine, sessions and migrations (``engine``), and the reads on
the hot path that the domain asks for through its own interfaces (``licenses``)."""

from __future__ import annotations

from server.db.engine import Database, SchemaError, is_outage, make_engine

__all__ = ["Database", "SchemaError", "is_outage", "make_engine"]
