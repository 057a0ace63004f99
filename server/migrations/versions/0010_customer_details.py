"""customer details: several contact e-mails (the one ``email`` moves into the list) and the
vendor's notes

Revision ID: 0010_customer_details
Revises: 0009_patch_formats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_customer_details"
down_revision = "0009_patch_formats"
branch_labels = None
depends_on = None

# The columns as this migration sees them (JSON values bound through SQLAlchemy's JSON type,
# so that SQLite and PostgreSQL each get their own encoding).
customers = sa.table(
    "customers",
    sa.column("id", sa.Integer()),
    sa.column("email", sa.String(320)),
    sa.column("contact_emails", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("contact_emails", sa.JSON(), nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(customers.c.id, customers.c.email).where(
            customers.c.email.is_not(None), customers.c.email != ""
        )
    ).all()
    for customer_id, email in rows:
        bind.execute(
            customers.update()
            .where(customers.c.id == customer_id)
            .values(contact_emails=[email.strip()])
        )
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("email")
        batch.alter_column("contact_emails", server_default=None)
        batch.alter_column("notes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    bind = op.get_bind()
    for customer_id, emails in bind.execute(
        sa.select(customers.c.id, customers.c.contact_emails)
    ).all():
        if emails:
            bind.execute(
                customers.update().where(customers.c.id == customer_id).values(email=emails[0])
            )
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("notes")
        batch.drop_column("contact_emails")
