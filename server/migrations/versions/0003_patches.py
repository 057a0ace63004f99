"""delta patches: artifact contents, patches, signed patch documents

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("content_size", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("patch_manifest", sa.Text(), nullable=True))
    op.create_table(
        "patches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("from_artifact_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_patches_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_patches_from_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patches")),
        sa.UniqueConstraint("artifact_id", "from_artifact_id", name=op.f("uq_patches_artifact_id")),
    )
    with op.batch_alter_table("patches") as batch:
        batch.create_index(batch.f("ix_patches_artifact_id"), ["artifact_id"], unique=False)
        batch.create_index(batch.f("ix_patches_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_table("patches")
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("patch_manifest")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("content_size")
        batch.drop_column("content_sha256")
