"""What a person meets in the web UI beyond the happy path: destructive actions ask first,
errors are the site's own pages in the visitor's language, and the style guide renders."""

from __future__ import annotations

import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.domain import customers as customer_service
from server.domain import products, users
from server.domain.models import License, Release
from server.domain.vocabulary import LicenseStatus
from server.services import Services
from tests.common.factories import make_product
from tests.functional.test_admin_web import PASSWORD, sign_in, token

ES = {"Accept-Language": "es-ES,es;q=0.9"}


@pytest.fixture
def accounts(services: Services) -> dict[str, str]:
    with services.db.sessions() as s:
        for role in ("admin", "viewer"):
            users.add_user(s, f"{role}@example.com", PASSWORD, role=role, actor="test")
    make_product(services)
    return {role: f"{role}@example.com" for role in ("admin", "viewer")}


def _license(services: Services) -> tuple[int, str]:
    with services.db.sessions() as s:
        customer = customer_service.add_customer(s, "initech", "Initech", actor="t")
        lic, _ = customer_service.issue_license(
            s, customer, products.get_product(s, "acme-erp"), actor="t"
        )
        return lic.id, lic.key_prefix


def _status(services: Services, license_id: int) -> str:
    with services.db.sessions() as s:
        found = s.get(License, license_id)
        assert found is not None
        return str(found.status)


def test_revoke_needs_a_confirmation_and_one_click_changes_nothing(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    license_id, prefix = _license(services)
    sign_in(client, accounts["admin"])
    page = client.get("/admin/customers/initech").get_data(as_text=True)
    revoke = f"/admin/customers/initech/licenses/{license_id}/revoke"
    # The page offers Revoke as a step that says what will happen before its button acts.
    step = page.split(f'action="{revoke}"', 1)[1].split("</details>", 1)[0]
    assert f"Revoke license {prefix}…: installations using it stop receiving updates." in step
    assert "This cannot be undone." in step and 'name="confirm" value="yes"' in step
    csrf = token(client, "/admin/customers/initech")

    one_click = client.post(revoke, data={"csrf_token": csrf})
    assert one_click.status_code == 200
    asked = one_click.get_data(as_text=True)
    assert "Nothing has been done yet." in asked and f"Revoke license {prefix}…" in asked
    assert _status(services, license_id) == LicenseStatus.ACTIVE, "nothing changed"
    wrong = client.post(revoke, data={"csrf_token": csrf, "confirm": "no"})
    assert wrong.status_code == 200 and _status(services, license_id) == LicenseStatus.ACTIVE

    # The confirmation page's own form does it.
    form = re.search(r'<form method="post" action="([^"]+)">', asked)
    assert form and form.group(1) == revoke
    done = client.post(revoke, data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303
    assert _status(services, license_id) == LicenseStatus.REVOKED


def test_suspend_and_renew_ask_first_reactivate_does_not(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    license_id, _ = _license(services)
    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/customers/initech")
    base = f"/admin/customers/initech/licenses/{license_id}"
    assert client.post(f"{base}/suspend", data={"csrf_token": csrf}).status_code == 200
    assert _status(services, license_id) == LicenseStatus.ACTIVE
    form = {"csrf_token": csrf, "confirm": "yes"}
    assert client.post(f"{base}/suspend", data=form).status_code == 303
    assert _status(services, license_id) == LicenseStatus.SUSPENDED
    assert client.post(f"{base}/reactivate", data={"csrf_token": csrf}).status_code == 303
    assert _status(services, license_id) == LicenseStatus.ACTIVE


def test_a_missing_page_is_an_html_404_in_the_visitors_language(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    missing = client.get("/no-such-page", headers=ES)
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    html = missing.get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Página no encontrada" in html
    english = client.get("/no-such-page").get_data(as_text=True)
    assert "Page not found" in english and '<html lang="en">' in english
    # A missing release or customer in the admin web: the same page, not a JSON body.
    sign_in(client, accounts["viewer"])
    for path in ("/admin/releases/acme-erp/9.9.9", "/admin/customers/nobody"):
        page = client.get(path, headers=ES)
        assert page.status_code == 404, path
        assert page.mimetype == "text/html", path
        assert "Página no encontrada" in page.get_data(as_text=True)
    # The API keeps its JSON.
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_other_errors_are_pages_too_and_a_500_shows_no_internals(
    app: Flask, client: FlaskClient, accounts: dict[str, str]
) -> None:
    @app.get("/admin/boom")
    def _boom() -> str:
        raise RuntimeError("secret internals /etc/vigor.toml")

    not_here = client.put("/admin/login")
    assert not_here.status_code == 405 and not_here.mimetype == "text/html"
    refused = client.post("/admin/login", data={"email": "a@b.c"}, headers=ES)
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "El formulario caducó" in refused.get_data(as_text=True)

    failed = client.get("/admin/boom")
    assert failed.status_code == 500 and failed.mimetype == "text/html"
    html = failed.get_data(as_text=True)
    assert "Something went wrong" in html
    assert "secret internals" not in html and "Traceback" not in html


def test_the_style_guide_shows_the_shared_components(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["viewer"])
    page = client.get("/admin/style")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for component in ("table", 'class="stack"', "confirm-step", "empty-state", "pagination"):
        assert component in html, component
    assert "200 MiB" in html


def _preflight(client: FlaskClient, **fields: str | list[str]) -> tuple[int, dict[str, str]]:
    data: dict[str, str | list[str]] = {
        "csrf_token": token(client, "/admin/releases/new"),
        "product": "acme-erp",
        "kind": "update",
        "channel": "stable",
        "platform.artifact": "linux-x86_64",
        "chosen": "artifact",
        "size.artifact": "1000",
        **fields,
    }
    answer = client.post("/admin/releases/new/check", data=data)
    return answer.status_code, answer.get_json()["errors"]


def test_the_upload_preflight_names_every_problem_at_once(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["admin"])
    assert _preflight(client, version="1.0.0") == (200, {})
    status, errors = _preflight(
        client,
        version="",
        kind="security",
        channel="Not A Channel",
        customers=["nobody"],
        chosen=[],
    )
    assert status == 422
    assert set(errors) == {"version", "severity", "channel", "customers", "files"}
    assert errors["version"] == "Give the version, like 4.3.1."
    assert errors["files"] == "Choose a file to upload."
    # The limits, in numbers people read.
    _, errors = _preflight(client, version="1." + "0" * 70)
    assert errors["version"] == "The version is 72 characters long; at most 64."
    _, errors = _preflight(client, version="v6.1.0")
    assert errors["version"] == "“v6.1.0” would be saved as 6.1.0; type 6.1.0 instead."
    limit = services.settings.max_upload_bytes
    _, errors = _preflight(client, version="6.1.0", **{"size.artifact": str(limit + 1)})
    assert "at most 8 GiB per file" in errors["files"]


def test_the_upload_preflight_refuses_a_version_that_exists(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/releases/new")
    published = client.post(
        "/admin/releases/new",
        data={
            "csrf_token": csrf,
            "product": "acme-erp",
            "version": "2.0.0",
            "kind": "update",
            "platform.artifact": "linux-x86_64",
            "artifact": (io.BytesIO(b"release bytes"), "a.tar.gz"),
        },
        content_type="multipart/form-data",
    )
    assert published.status_code == 303
    status, errors = _preflight(client, version="2.0.0", min_from="3.0.0")
    assert status == 422
    assert errors == {
        "version": "acme-erp 2.0.0 exists already; give the next version number.",
        "min_from": "acme-erp has no release 3.0.0.",
    }
    # Without script the form says the same, every field at once, and publishes nothing.
    refused = client.post(
        "/admin/releases/new",
        data={
            "csrf_token": csrf,
            "product": "acme-erp",
            "version": "2.0.0",
            "kind": "security",
            "platform.artifact": "linux-x86_64",
            "artifact": (io.BytesIO(b"other bytes"), "b.tar.gz"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "acme-erp 2.0.0 exists already" in page
    assert "A security revision needs a severity." in page
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 1


def test_only_publishers_may_ask_the_preflight(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["viewer"])
    answer = client.post(
        "/admin/releases/new/check",
        data={"csrf_token": token(client, "/admin/"), "version": "1.0.0"},
    )
    assert answer.status_code == 403


def test_a_refused_contract_names_the_fields_as_labelled_and_keeps_the_dates(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    _license(services)
    sign_in(client, accounts["admin"])
    refused = client.post(
        "/admin/customers/initech/contracts",
        data={
            "csrf_token": token(client, "/admin/customers/initech"),
            "kind": "maintenance",
            "product": "acme-erp",
            "starts_on": "2027-05-01",
            "ends_on": "2027-01-31",
        },
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    error = re.search(r'<p class="flash error" role="alert">([^<]+)</p>', page)
    assert error and error.group(1) == "To: must not be before From"
    assert 'id="starts_on" name="starts_on" type="date" required value="2027-05-01"' in page
    assert 'id="ends_on" name="ends_on" type="date" required value="2027-01-31"' in page
