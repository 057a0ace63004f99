"""webhooks: endpoints, the events written with the changes that caused them, deliveries and
their attempts (the delivery log); two job kinds, whose names need a wider ``jobs.kind``

Revision ID: 0012_webhooks
Revises: 0011_emails
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_webhooks"
down_revision = "0011_emails"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('patches', 'probe', 'email', 'reminders_scan', 'security_notices')"
NEW_KINDS = (
    "kind IN ('patches', 'probe', 'email', 'reminders_scan', 'security_notices', "
    "'webhook_delivery', 'contract_events_scan')"
)
EVENT_TYPES = (
    "type IN ('ping', 'release.published', 'release.yanked', 'rollout.halted', "
    "'customer.created', 'contract.created', 'contract.renewed', 'contract.expiring', "
    "'contract.lapsed', 'license.issued', 'license.suspended', 'license.reactivated', "
    "'license.revoked', 'installation.update_failed')"
)
DELIVERY_STATES = "state IN ('pending', 'retrying', 'delivered', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.alter_column("kind", existing_type=sa.String(length=16), type_=sa.String(length=32))
        batch.create_check_constraint(op.f("ck_jobs_kind"), NEW_KINDS)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(EVENT_TYPES, name=op.f("ck_webhook_events_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_events_event_id")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_events_dedupe_key")),
    )
    with op.batch_alter_table("webhook_events") as batch:
        batch.create_index(batch.f("ix_webhook_events_type"), ["type"], unique=False)
        batch.create_index(batch.f("ix_webhook_events_created_at"), ["created_at"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(DELIVERY_STATES, name=op.f("ck_webhook_deliveries_state")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "endpoint_id", name=op.f("uq_webhook_deliveries_event_id")),
    )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.create_index(
            batch.f("ix_webhook_deliveries_endpoint_id"), ["endpoint_id"], unique=False
        )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.create_index(
            batch.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
    op.execute(
        sa.text("DELETE FROM jobs WHERE kind IN ('webhook_delivery', 'contract_events_scan')")
    )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.alter_column("kind", existing_type=sa.String(length=32), type_=sa.String(length=16))
        batch.create_check_constraint(op.f("ck_jobs_kind"), OLD_KINDS)
