"""Managing customers and products from the admin web: add and edit with the input checked
(a refusal changes nothing and keeps what was typed), lines and their lifecycle, and the
migration that moved each customer's one e-mail into their contact e-mails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from server.cli import cli
from server.db import Database
from server.domain import users
from server.domain.models import AuditEvent, Customer, Product
from server.services import Services
from tests.common.factories import make_customer, make_product
from tests.functional.test_admin_web import PASSWORD, sign_in, token


@pytest.fixture
def admin(services: Services, client: FlaskClient) -> FlaskClient:
    with services.db.sessions() as s:
        users.add_user(s, "admin@example.com", PASSWORD, role="admin", actor="test")
        users.add_user(s, "viewer@example.com", PASSWORD, role="viewer", actor="test")
    make_product(services)
    assert sign_in(client, "admin@example.com").status_code == 303
    return client


def post(client: FlaskClient, path: str, form_page: str, **data: str) -> Any:
    return client.post(path, data={**data, "csrf_token": token(client, form_page)})


def customer(services: Services, slug: str) -> Customer | None:
    with services.db.sessions() as s:
        return s.scalar(select(Customer).where(Customer.slug == slug))


def test_an_admin_adds_a_customer_with_several_contacts_and_notes(
    admin: FlaskClient, services: Services
) -> None:
    response = post(
        admin,
        "/admin/customers/new",
        "/admin/customers/new",
        slug="initech",
        name="Initech",
        contact_emails="IT@initech.example\nboss@initech.example, it@initech.example",
        language="es",
        notes="Pays in March.",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/customers/initech"
    added = customer(services, "initech")
    assert added is not None
    assert added.contact_emails == ["it@initech.example", "boss@initech.example"]
    assert (added.language, added.notes) == ("es", "Pays in March.")
    page = admin.get("/admin/customers/initech").get_data(as_text=True)
    assert "it@initech.example, boss@initech.example" in page and "Pays in March." in page


@pytest.mark.parametrize(
    ("field", "form", "message"),
    [
        (
            "contact_emails",
            {"contact_emails": "it@initech.example\nnot-an-address"},
            "not-an-address",
        ),
        ("slug", {"slug": "Not A Slug"}, "lowercase letters"),
        ("language", {"language": "xx"}, "must be one of"),
    ],
)
def test_a_refused_new_customer_adds_nothing_and_keeps_the_input(
    admin: FlaskClient, services: Services, field: str, form: dict[str, str], message: str
) -> None:
    data = {"slug": "initech", "name": "Initech Typed", "contact_emails": "", **form}
    response = post(admin, "/admin/customers/new", "/admin/customers/new", **data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    assert "Initech Typed" in page, "what was typed is kept"
    with services.db.sessions() as s:
        assert s.scalars(select(Customer)).all() == []


def test_an_admin_edits_a_customer_and_a_bad_address_changes_nothing(
    admin: FlaskClient, services: Services
) -> None:
    make_customer(services, "initech")
    edit = "/admin/customers/initech/edit"
    refused = post(
        admin, edit, edit, name="Initech Inc", contact_emails="x@", language="", notes=""
    )
    assert refused.status_code == 400
    assert "&#39;x@&#39; is not an e-mail address" in refused.get_data(as_text=True)
    unchanged = customer(services, "initech")
    assert unchanged is not None and (unchanged.name, unchanged.contact_emails) == ("Initech", [])
    saved = post(
        admin,
        edit,
        edit,
        name="Initech Inc",
        contact_emails="ops@initech.example",
        language="es",
        notes="VIP",
    )
    assert saved.status_code == 303
    changed = customer(services, "initech")
    assert changed is not None
    assert (changed.name, changed.contact_emails, changed.language, changed.notes) == (
        "Initech Inc",
        ["ops@initech.example"],
        "es",
        "VIP",
    )
    with services.db.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "customer.update"))
        assert event is not None
        assert event.details == {"changed": ["name", "contact_emails", "language", "notes"]}


def test_a_viewer_cannot_add_or_edit(
    client: FlaskClient, admin: FlaskClient, services: Services
) -> None:
    make_customer(services, "initech")
    admin.post("/admin/logout", data={"csrf_token": token(admin, "/admin/")})
    sign_in(client, "viewer@example.com")
    assert client.get("/admin/customers/new").status_code == 403
    assert client.get("/admin/customers/initech/edit").status_code == 403
    assert client.get("/admin/products").status_code == 200


def test_an_admin_adds_and_edits_a_product_and_its_lines(
    admin: FlaskClient, services: Services
) -> None:
    fields = {
        "lapse_policy": "revoke",
        "security_carveout_months": "6",
        "grace_days": "14",
        "expiring_window_days": "45",
        "timezone": "Europe/Madrid",
        "renewal_url": "https://vendor.example/renew",
    }
    added = post(
        admin, "/admin/products", "/admin/products", slug="widget", name="Widget", **fields
    )
    assert added.status_code == 303
    with services.db.sessions() as s:
        product = s.scalar(select(Product).where(Product.slug == "widget"))
        assert product is not None
        assert (product.lapse_policy, product.grace_days, product.timezone) == (
            "revoke",
            14,
            "Europe/Madrid",
        )
    page = "/admin/products/widget"
    refused = post(admin, page, page, name="Widget", **{**fields, "grace_days": "-3"})
    assert refused.status_code == 400
    assert "grace_days: must be a whole number from 0 to 365" in refused.get_data(as_text=True)
    assert (
        post(admin, page, page, name="Widget 2", **{**fields, "grace_days": "30"}).status_code
        == 303
    )
    assert post(admin, f"{page}/lines", page, line="5.x", status="supported").status_code == 303
    assert post(admin, f"{page}/lines", page, line="5.x", status="supported").status_code == 409
    assert post(admin, f"{page}/lines", page, line="../x", status="supported").status_code == 400
    assert post(admin, f"{page}/lines/5.x", page, status="security-only").status_code == 303
    assert post(admin, f"{page}/lines/5.x", page, status="retired").status_code == 400
    with services.db.sessions() as s:
        product = s.scalar(select(Product).where(Product.slug == "widget"))
        assert product is not None
        assert (product.name, product.grace_days) == ("Widget 2", 30)
        assert [(line.name, line.status) for line in product.lines] == [("5.x", "security-only")]
        assert product.catalog_revision >= 3, "every change invalidates cached catalogues"


def test_customer_add_takes_several_emails_on_the_command_line(
    app: Flask, services: Services
) -> None:
    result = app.test_cli_runner().invoke(
        cli,
        [
            "customer",
            "add",
            "initech",
            "--email",
            "a@initech.example",
            "--email",
            "b@initech.example,c@initech.example",
        ],
    )
    assert result.exit_code == 0, result.output
    added = customer(services, "initech")
    assert added is not None
    assert added.contact_emails == ["a@initech.example", "b@initech.example", "c@initech.example"]
    bad = app.test_cli_runner().invoke(cli, ["customer", "add", "globex", "--email", "nope"])
    assert bad.exit_code != 0
    assert "'nope' is not an e-mail address" in bad.output
    assert customer(services, "globex") is None


def test_the_migration_moves_each_email_into_the_contact_emails(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        command.upgrade(db.alembic_config(), "0009_patch_formats")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (id, slug, name, email, language, created_at) VALUES "
                    "(1, 'initech', 'Initech', 'it@initech.example', 'en', CURRENT_TIMESTAMP), "
                    "(2, 'globex', 'Globex', NULL, '', CURRENT_TIMESTAMP)"
                )
            )
        command.upgrade(db.alembic_config(), "0010_customer_details")
        with db.engine.connect() as conn:  # read as that revision has it: no model of the day
            rows = conn.execute(text("SELECT slug, contact_emails, notes FROM customers")).all()
        found = {
            slug: (json.loads(emails) if isinstance(emails, str) else emails, notes)
            for slug, emails, notes in rows
        }
        assert found == {"initech": (["it@initech.example"], ""), "globex": ([], "")}
        command.downgrade(db.alembic_config(), "0009_patch_formats")
        with db.engine.connect() as conn:
            emails = dict(conn.execute(text("SELECT slug, email FROM customers")).all())
        assert emails == {"initech": "it@initech.example", "globex": None}
    finally:
        db.dispose()
