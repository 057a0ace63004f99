"""webhook signing secrets encrypted at rest: ``webhook_endpoints.secret`` (in clear) becomes
``secret_encrypted``, encrypted with a key derived from the instance's secret key
(``server/domain/sealed.py``); the rows there are converted, and back on downgrade

Revision ID: 0014_webhook_secrets
Revises: 0013_admin_api
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op
from cryptography.fernet import Fernet, InvalidToken

from server.domain import sealed

revision = "0014_webhook_secrets"
down_revision = "0013_admin_api"
branch_labels = None
depends_on = None

PURPOSE = "webhook-secret"  # server.domain.webhooks.SEALED_AS when this was written


def _box(rows: list[sa.Row[tuple[int, str]]]) -> Fernet:
    secret_key = str(context.config.attributes.get("secret_key") or "")
    if rows and not secret_key:
        raise RuntimeError(
            "migration 0014 encrypts or decrypts the webhook signing secrets with the "
            "instance's secret key, and none was given: run `vigor init` (it reads "
            "VIGOR_SECRET_KEY or the instance directory's secret_key)"
        )
    return sealed.box(secret_key, PURPOSE)


def _convert(source: str, target: str, change: Callable[[Fernet, str], str]) -> None:
    conn = op.get_bind()
    rows = list(conn.execute(sa.text(f"SELECT id, {source} FROM webhook_endpoints")))  # noqa: S608
    if not rows:
        return
    box = _box(rows)
    for endpoint_id, value in rows:
        conn.execute(
            sa.text(f"UPDATE webhook_endpoints SET {target} = :value WHERE id = :id"),  # noqa: S608
            {"value": change(box, value), "id": endpoint_id},
        )


def _encrypt(box: Fernet, secret: str) -> str:
    return box.encrypt(secret.encode()).decode()


def _decrypt(box: Fernet, token: str) -> str:
    try:
        return box.decrypt(token).decode()
    except InvalidToken:
        raise RuntimeError(
            "a webhook signing secret does not decrypt with this instance's secret key "
            "(it changed since the secret was made); nothing was changed"
        ) from None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("secret_encrypted", sa.String(length=255), nullable=True))
    _convert("secret", "secret_encrypted", _encrypt)
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret_encrypted", existing_type=sa.String(length=255), nullable=False)
        batch.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("secret", sa.String(length=100), nullable=True))
    _convert("secret_encrypted", "secret", _decrypt)
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", existing_type=sa.String(length=100), nullable=False)
        batch.drop_column("secret_encrypted")
