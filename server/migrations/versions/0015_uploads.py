"""staged uploads: an artifact sent on its own as a raw body (POST /api/v1/admin/uploads), then
named by a JSON publish; used once, removed by `vigor gc` after a day

Revision ID: 0015_uploads
Revises: 0014_webhook_secrets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_uploads"
down_revision = "0014_webhook_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_staged_uploads_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_uploads")),
        sa.UniqueConstraint("public_id", name=op.f("uq_staged_uploads_public_id")),
    )
    with op.batch_alter_table("staged_uploads") as batch:
        batch.create_index(batch.f("ix_staged_uploads_created_at"), ["created_at"], unique=False)
        batch.create_index(batch.f("ix_staged_uploads_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_table("staged_uploads")
