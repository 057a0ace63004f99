"""throttle windows: rate-limit counters in the database, shared by every serving process

Revision ID: 0006_throttle
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_throttle"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_windows",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("closes_at", sa.Float(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_windows")),
    )
    with op.batch_alter_table("throttle_windows") as batch:
        batch.create_index(batch.f("ix_throttle_windows_closes_at"), ["closes_at"], unique=False)


def downgrade() -> None:
    op.drop_table("throttle_windows")
