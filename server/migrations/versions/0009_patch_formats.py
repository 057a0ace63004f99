"""patch formats and skipped patches: each patch names its format (rows made before zstd are
"vigor1"), and why a patch between two artifacts was not made is recorded

Revision ID: 0009_patch_formats
Revises: 0008_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_patch_formats"
down_revision = "0008_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patches") as batch:
        # The rows that exist are all "vigor1"; so is a row that names no format (the server
        # always names it).
        batch.add_column(
            sa.Column("format", sa.String(length=16), nullable=False, server_default="vigor1")
        )
        batch.create_check_constraint(op.f("ck_patches_format"), "format IN ('vigor1', 'zstd1')")
    op.create_table(
        "patch_skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("from_artifact_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('not-worth-it', 'too-slow', 'error')", name=op.f("ck_patch_skips_reason")
        ),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_patch_skips_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_patch_skips_from_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patch_skips")),
        sa.UniqueConstraint(
            "artifact_id", "from_artifact_id", name=op.f("uq_patch_skips_artifact_id")
        ),
    )
    with op.batch_alter_table("patch_skips") as batch:
        batch.create_index(batch.f("ix_patch_skips_artifact_id"), ["artifact_id"], unique=False)


def downgrade() -> None:
    op.drop_table("patch_skips")
    with op.batch_alter_table("patches") as batch:
        batch.drop_constraint(op.f("ck_patches_format"), type_="check")
        batch.drop_column("format")
