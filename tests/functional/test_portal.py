"""The customer portal: a license key signs in; maintenance, downloads and the renewal banner."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.domain import customers
from server.services import Services
from tests.common.factories import (
    app_archive,
    make_customer,
    make_license,
    make_product,
    make_release,
)

TODAY = datetime.now(UTC).date()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.fixture
def keys(services: Services, tmp_path: Path) -> dict[str, str]:
    make_product(services)
    now = datetime.now(UTC)
    make_release(services, tmp_path, "1.0.0", published_at=now - timedelta(days=300))
    make_release(
        services,
        tmp_path,
        "1.1.0",
        kind="security",
        severity="critical",
        published_at=now - timedelta(days=30),
    )
    make_release(services, tmp_path, "2.0.0", kind="version", published_at=now - timedelta(days=5))
    make_customer(services, "active", ("maintenance", days(-100), days(200)))
    make_customer(services, "lapsed", ("maintenance", days(-400), days(-60)))
    with services.db.sessions() as s:
        customers.add_customer(s, "spanish", "Cliente", actor="t", language="es")
        customers.add_contract(
            s, customers.get_customer(s, "spanish"), "maintenance", days(-400), days(-60), actor="t"
        )
    return {name: make_license(services, name) for name in ("active", "lapsed", "spanish")}


def sign_in(client: FlaskClient, key: str, **headers: str) -> Any:
    page = client.get("/portal/login", headers=headers).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert csrf
    return client.post(
        "/portal/login", data={"key": key, "csrf_token": csrf.group(1)}, headers=headers
    )


def test_lapsed_customer_sees_the_renewal_banner_and_keeps_old_releases(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    assert sign_in(client, keys["lapsed"]).status_code == 303
    page = client.get("/portal/").get_data(as_text=True)
    assert 'class="banner lapsed"' in page
    assert "You are missing 2 release(s), including 1 security revision(s). Newest: 2.0.0." in page
    assert "Renew maintenance" in page
    assert ">1.0.0<" in page and ">2.0.0<" not in page


def test_active_customer_has_no_banner_and_can_download(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    sign_in(client, keys["active"])
    page = client.get("/portal/").get_data(as_text=True)
    assert 'class="banner' not in page
    link = re.search(r'<td>2\.0\.0</td>.*?href="([^"]+)"', page, re.S)
    assert link
    with client.get(link.group(1)) as response:
        assert response.status_code == 200
        assert (
            hashlib.sha256(response.get_data()).hexdigest()
            == hashlib.sha256(app_archive("2.0.0")).hexdigest()
        )


def test_portal_speaks_the_customer_s_language(client: FlaskClient, keys: dict[str, str]) -> None:
    sign_in(client, keys["spanish"])
    page = client.get("/portal/").get_data(as_text=True)
    assert "Renovar el mantenimiento" in page
    assert '<html lang="es">' in page
    assert "Acceda a sus descargas" in client.get(
        "/portal/login", headers={"Accept-Language": "es"}
    ).get_data(as_text=True)


def test_bad_key_and_missing_csrf_are_refused(client: FlaskClient, keys: dict[str, str]) -> None:
    refused = sign_in(client, "vgl_not_a_key")
    assert refused.status_code == 400
    assert "That license key is not valid." in refused.get_data(as_text=True)
    assert client.post("/portal/login", data={"key": keys["active"]}).status_code == 400
    assert client.get("/portal/").status_code == 302


def test_suspending_the_license_closes_the_portal(
    client: FlaskClient, services: Services, keys: dict[str, str]
) -> None:
    sign_in(client, keys["active"])
    assert client.get("/portal/").status_code == 200
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, keys["active"]), "suspended", actor="t"
        )
    assert client.get("/portal/").status_code == 302
