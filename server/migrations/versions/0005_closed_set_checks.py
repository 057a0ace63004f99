"""closed sets held by CHECK constraints: statuses, kinds, severities, roles, outcomes, rollout

Revision ID: 0005
Revises: 0004

The value lists are written out here, not taken from server.domain.vocabulary: a migration is
history, and must build the same schema after the vocabulary grows (a new value gets its own
migration, which drops and re-adds the constraint).

On SQLite each table is recreated (batch mode: copy, drop, rename), with its indexes, foreign
keys and rows; server/migrations/env.py turns foreign key enforcement off meanwhile, or dropping
the old table would cascade-delete the rows that refer to it.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table: [(constraint name, condition)], in the form the models' Enum columns render.
CHECKS: dict[str, list[tuple[str, str]]] = {
    "products": [
        ("ck_products_lapse_policy", "lapse_policy IN ('fallback', 'revoke')"),
    ],
    "product_lines": [
        (
            "ck_product_lines_status",
            "status IN ('supported', 'security-only', 'end-of-life')",
        ),
    ],
    "releases": [
        ("ck_releases_rollout_percent", "rollout_percent BETWEEN 0 AND 100"),
        ("ck_releases_kind", "kind IN ('update', 'security', 'version')"),
        ("ck_releases_severity", "severity IN ('critical', 'serious', 'minor')"),
    ],
    "contracts": [
        ("ck_contracts_kind", "kind IN ('maintenance', 'customization')"),
    ],
    "licenses": [
        ("ck_licenses_status", "status IN ('active', 'suspended', 'revoked')"),
    ],
    "admin_users": [
        ("ck_admin_users_role", "role IN ('admin', 'publisher', 'viewer')"),
    ],
    "api_tokens": [
        ("ck_api_tokens_role", "role IN ('admin', 'publisher', 'viewer')"),
    ],
    "apply_reports": [
        ("ck_apply_reports_outcome", "outcome IN ('success', 'failure', 'rolled_back')"),
    ],
}


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, condition in checks:
                batch.create_check_constraint(batch.f(name), condition)


def downgrade() -> None:
    for table, checks in reversed(CHECKS.items()):
        with op.batch_alter_table(table) as batch:
            for name, _condition in reversed(checks):
                batch.drop_constraint(batch.f(name), type_="check")
