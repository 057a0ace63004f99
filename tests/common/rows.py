"""Rows of every table, written and read with plain SQL, as a database at migration 0004 holds
them: what migration tests put in a database before they upgrade it.

Plain SQL on purpose: the models describe the newest schema, and a test of an old database must
not change when they do. Every closed set's values appear at least once; times are UTC text.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, inspect, text

T0, T1 = "2025-01-02 03:04:05", "2025-06-07 08:09:10"

PRODUCT = {
    "security_carveout_months": 0,
    "expiring_window_days": 30,
    "grace_days": 0,
    "timezone": "UTC",
    "deadline_critical_hours": 8,
    "deadline_serious_hours": 24,
    "deadline_minor_hours": 72,
    "renewal_url": None,
    "catalog_revision": 3,
    "created_at": T0,
}
RELEASE = {
    "channel": "stable",
    "notes": "",
    "min_from": None,
    "published_at": T1,
    "created_at": T0,
    "created_by": "test",
    "manifest": "{}",
    "manifest_keyid": "ab" * 32,
    "yanked_at": None,
    "yank_reason": None,
    "recommended_version": None,
    "patch_manifest": None,
}
LICENSE = {"label": "", "max_installations": None, "created_at": T0, "status_changed_at": None}
REPORT = {"at": T1, "installation_uid": "inst-0123456789abcdef", "from_version": "4.0.0"}
ADMIN = {"password_hash": "x", "session_version": 1, "disabled": False, "created_at": T0}
TOKEN = {"created_by": "admin@example.com", "created_at": T0, "last_used_at": None}

# Parents before children.
ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {"id": 1, "slug": "initech", "name": "Initech", "email": None, "language": "en"}
        | {"created_at": T0},
        {"id": 2, "slug": "globex", "name": "Globex", "email": "it@globex.example", "language": ""}
        | {"created_at": T0},
    ],
    "products": [
        {"id": 1, "slug": "acme-erp", "name": "Acme ERP", "lapse_policy": "fallback", **PRODUCT},
        {"id": 2, "slug": "acme-pos", "name": "Acme POS", "lapse_policy": "revoke", **PRODUCT},
    ],
    "trust_roots": [{"version": 1, "document": '{"signed": {}}', "created_at": T0}],
    "product_lines": [
        {"id": 1, "product_id": 1, "name": "4.x", "status": "supported"},
        {"id": 2, "product_id": 1, "name": "3.x", "status": "security-only"},
        {"id": 3, "product_id": 1, "name": "2.x", "status": "end-of-life"},
    ],
    "releases": [
        {
            "id": 1,
            "product_id": 1,
            "line_id": 1,
            "version": "4.0.0",
            "kind": "version",
            "severity": None,
            "rollout_percent": 100,
            **RELEASE,
        },
        {
            "id": 2,
            "product_id": 1,
            "line_id": 1,
            "version": "4.0.1",
            "kind": "security",
            "severity": "critical",
            "rollout_percent": 0,
            **RELEASE,
        },
        {
            "id": 3,
            "product_id": 1,
            "line_id": 2,
            "version": "3.9.1",
            "kind": "security",
            "severity": "serious",
            "rollout_percent": 50,
            **RELEASE,
        },
        {
            "id": 4,
            "product_id": 1,
            "line_id": 1,
            "version": "4.1.0",
            "kind": "update",
            "severity": "minor",
            "rollout_percent": 100,
            **RELEASE,
            "channel": "globex",
            "yanked_at": T1,
            "yank_reason": "broken",
        },
    ],
    "release_customers": [{"release_id": 4, "customer_id": 2}],
    "artifacts": [
        {
            "id": 1,
            "release_id": 1,
            "platform": "linux-x86_64",
            "filename": "acme-4.0.0.tar.gz",
            "size": 1000,
            "sha256": "01" * 32,
            "content_sha256": "11" * 32,
            "content_size": 4000,
        },
        {
            "id": 2,
            "release_id": 2,
            "platform": "linux-x86_64",
            "filename": "acme-4.0.1.tar.gz",
            "size": 1001,
            "sha256": "02" * 32,
            "content_sha256": None,
            "content_size": None,
        },
    ],
    "patches": [
        {
            "id": 1,
            "artifact_id": 2,
            "from_artifact_id": 1,
            "sha256": "03" * 32,
            "size": 10,
            "created_at": T1,
        }
    ],
    "contracts": [
        {
            "id": 1,
            "customer_id": 1,
            "kind": "maintenance",
            "product_id": 1,
            "starts_on": "2025-01-01",
            "ends_on": "2025-12-31",
            "note": "",
            "created_at": T0,
        },
        {
            "id": 2,
            "customer_id": 2,
            "kind": "customization",
            "product_id": None,
            "starts_on": "2025-01-01",
            "ends_on": "2026-12-31",
            "note": "all products",
            "created_at": T0,
        },
    ],
    "licenses": [
        {
            "id": 1,
            "customer_id": 1,
            "product_id": 1,
            "key_hash": "a1" * 32,
            "key_prefix": "vgl_a1",
            "status": "active",
            **LICENSE,
        },
        {
            "id": 2,
            "customer_id": 2,
            "product_id": 1,
            "key_hash": "a2" * 32,
            "key_prefix": "vgl_a2",
            "status": "suspended",
            **LICENSE,
            "status_changed_at": T1,
        },
        {
            "id": 3,
            "customer_id": 1,
            "product_id": 2,
            "key_hash": "a3" * 32,
            "key_prefix": "vgl_a3",
            "status": "revoked",
            **LICENSE,
            "status_changed_at": T1,
        },
    ],
    "installations": [
        {
            "id": 1,
            "license_id": 1,
            "uid": "inst-0123456789abcdef",
            "version": "4.0.1",
            "platform": "linux-x86_64",
            "channel": "stable",
            "first_seen": T0,
            "last_seen": T1,
            "status_key": None,
            "status_exported_at": None,
        }
    ],
    "download_events": [
        {"id": 1, "at": T1, "license_id": 1, "artifact_id": 2, "range_start": 0},
    ],
    "apply_reports": [
        {"id": 1, "license_id": 1, "release_id": 2, "outcome": "success", **REPORT},
        {"id": 2, "license_id": 1, "release_id": 2, "outcome": "failure", **REPORT},
        {"id": 3, "license_id": 2, "release_id": 2, "outcome": "rolled_back", **REPORT},
    ],
    "admin_users": [
        {"id": 1, "email": "admin@example.com", "role": "admin", **ADMIN},
        {"id": 2, "email": "ci@example.com", "role": "publisher", **ADMIN},
        {"id": 3, "email": "audit@example.com", "role": "viewer", **ADMIN},
    ],
    "api_tokens": [
        {"id": 1, "name": "ci", "token_hash": "b1" * 32, "token_prefix": "vgt_b1", **TOKEN}
        | {"role": "publisher", "revoked_at": None},
        {"id": 2, "name": "ops", "token_hash": "b2" * 32, "token_prefix": "vgt_b2", **TOKEN}
        | {"role": "admin", "revoked_at": T1},
        {"id": 3, "name": "dash", "token_hash": "b3" * 32, "token_prefix": "vgt_b3", **TOKEN}
        | {"role": "viewer", "revoked_at": None},
    ],
    "customer_users": [
        {
            "id": 1,
            "customer_id": 2,
            "email": "it@globex.example",
            "password_hash": None,
            "session_version": 1,
            "disabled": False,
            "created_at": T0,
            "last_login_at": None,
        }
    ],
    "audit_events": [
        {
            "id": 1,
            "at": T0,
            "actor": "admin@example.com",
            "action": "license.suspended",
            "target": "globex/vgl_a2",
            "details": '{"status": "suspended"}',
        }
    ],
}


def _customer_at_head(row: dict[str, Any]) -> dict[str, Any]:
    """A customer row of 0004 as the schema has it since 0010 (contact e-mails, notes)."""
    rest = {k: v for k, v in row.items() if k != "email"}
    emails = [row["email"]] if row["email"] else []
    return {**rest, "contact_emails": json.dumps(emails), "notes": ""}


# The same rows for a database at the newest migration.
ROWS_AT_HEAD = {
    table: [_customer_at_head(r) for r in rows] if table == "customers" else rows
    for table, rows in ROWS.items()
}


def insert_rows(conn: Connection, rows: dict[str, list[dict[str, Any]]] = ROWS) -> None:
    """Insert ``rows`` (table → rows) with plain SQL, in the order given."""
    for table, table_rows in rows.items():
        for row in table_rows:
            names = ", ".join(row)
            params = ", ".join(f":{name}" for name in row)
            conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({params})"), row)  # noqa: S608 - names from this module


def table_contents(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but Alembic's, in primary key order, as the driver reads it."""
    inspector = inspect(conn)
    contents = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        order = ", ".join(inspector.get_pk_constraint(table)["constrained_columns"])
        contents[table] = [
            tuple(row)
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))  # noqa: S608 - reflected names
        ]
    return contents


def schema_shape(conn: Connection) -> dict[str, dict[str, Any]]:
    """What a table recreation could lose, per table: columns, keys, unique constraints, indexes
    (CHECK constraints are compared apart)."""
    inspector = inspect(conn)

    def named(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda item: str(item.get("name")))

    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": named(inspector.get_foreign_keys(table)),
            "unique": named(inspector.get_unique_constraints(table)),
            "indexes": named(inspector.get_indexes(table)),
        }
        for table in sorted(inspector.get_table_names())
    }


def check_constraints(conn: Connection) -> dict[str, str]:
    """Every named CHECK constraint of the database: name → condition (as the database words it)."""
    inspector = inspect(conn)
    return {
        check["name"]: check["sqltext"]
        for table in inspector.get_table_names()
        for check in inspector.get_check_constraints(table)
        if check.get("name")
    }
