"""Alembic environment: runs on the engine Vigor hands over (see server.db.Database)."""

from __future__ import annotations

from alembic import context

from server.domain.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
