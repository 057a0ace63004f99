"""portal key sessions: a server-side record of each portal session opened with a license key

Revision ID: 0007_sessions
Revises: 0006_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sessions"
down_revision = "0006_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_key_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["license_id"],
            ["licenses.id"],
            name=op.f("fk_portal_key_sessions_license_id_licenses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_key_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_key_sessions_token_hash")),
    )
    with op.batch_alter_table("portal_key_sessions") as batch:
        batch.create_index(
            batch.f("ix_portal_key_sessions_license_id"), ["license_id"], unique=False
        )
        batch.create_index(
            batch.f("ix_portal_key_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("portal_key_sessions")
