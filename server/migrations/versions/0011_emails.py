"""e-mails: the outbox of e-mails the worker sends, the products' reminder days, a customer's
unsubscribe from renewal reminders, and the job kinds that send and find e-mails

Revision ID: 0011_emails
Revises: 0010_customer_details
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_emails"
down_revision = "0010_customer_details"
branch_labels = None
depends_on = None

_KINDS_BEFORE = "kind IN ('patches', 'probe')"
_KINDS_AFTER = "kind IN ('patches', 'probe', 'email', 'reminders_scan', 'security_notices')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), _KINDS_AFTER)
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column(
                "reminder_days", sa.String(length=64), nullable=False, server_default="60,30,7"
            )
        )
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("reminders_unsubscribed_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("unsubscribe_url", sa.String(length=1000), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("smtp_response", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        # Written out, not taken from the vocabulary: a new value gets its own migration.
        sa.CheckConstraint(
            "kind IN ('reminder', 'security', 'renewal_brings', 'invitation', "
            "'password_reset', 'test')",
            name=op.f("ck_emails_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed')", name=op.f("ck_emails_state")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_emails_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_emails_dedupe_key")),
    )
    with op.batch_alter_table("emails") as batch:
        batch.create_index(batch.f("ix_emails_customer_id"), ["customer_id"], unique=False)
        batch.create_index(batch.f("ix_emails_state"), ["state"], unique=False)
        batch.create_index(batch.f("ix_emails_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("emails")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("reminders_unsubscribed_at")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("reminder_days")
    op.execute("DELETE FROM jobs WHERE kind IN ('email', 'reminders_scan', 'security_notices')")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), _KINDS_BEFORE)
