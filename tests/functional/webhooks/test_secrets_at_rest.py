"""Migration 0014 encrypts the signing secrets endpoints already have with the instance's secret
key, and its downgrade puts them back in clear; without the key (or with another) it refuses
and changes nothing."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text

from server.db import Database
from server.domain import webhooks
from server.domain.models import WebhookEndpoint

BEFORE = "0013_admin_api"
KEY = "the instance's secret key, long enough to be a real one"
CLEAR = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _at_0013(db: Database) -> None:
    db.upgrade()
    command.downgrade(db.alembic_config(), BEFORE)  # no endpoint yet: no key needed
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, url, description, secret, event_types,"
                " enabled, disabled_reason, consecutive_failures, created_at) VALUES (7,"
                " 'https://crm.example.com/hook', '', :secret, '[\"license.revoked\"]', :yes,"
                " '', 0, CURRENT_TIMESTAMP)"
            ),
            {"secret": CLEAR, "yes": True},
        )


def _clear_column(db: Database) -> str:
    with db.engine.connect() as conn:
        return str(conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar_one())


def test_the_migration_encrypts_existing_secrets_and_its_downgrade_decrypts_them(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        _at_0013(db)
        with pytest.raises(RuntimeError, match="none was given: run `vigor init`"):
            db.upgrade()  # a secret to encrypt and no key: refused
        assert db.current_revision() == BEFORE and _clear_column(db) == CLEAR

        db.upgrade(secret_key=KEY)

        with db.sessions() as s:
            endpoint = s.scalars(select(WebhookEndpoint)).one()
            assert CLEAR[6:] not in endpoint.secret_encrypted
            assert webhooks.signing_secret(endpoint, KEY) == CLEAR
        with pytest.raises(RuntimeError, match="does not decrypt"):
            command.downgrade(db.alembic_config(secret_key="another key"), BEFORE)
        assert db.is_current()

        command.downgrade(db.alembic_config(secret_key=KEY), BEFORE)

        assert db.current_revision() == BEFORE and _clear_column(db) == CLEAR
    finally:
        db.dispose()
