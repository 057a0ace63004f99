"""Behind a TLS-terminating proxy (VIGOR_TRUST_PROXY_HOPS=1, ``X-Forwarded-Proto: https``) the
forms work as a browser sends them: with no ``Referer``, since every page says
``Referrer-Policy: no-referrer``. (Flask-WTF's default refused every https form post for a
missing Referer.) The CSRF token itself is still required."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from server.config import Settings
from server.domain import users
from server.domain.models import utcnow
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product

PASSWORD = "correct horse battery"
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


@pytest.fixture
def proxied(settings: Settings) -> Iterator[tuple[FlaskClient, Services]]:
    behind = settings.with_(trust_proxy_hops=1, public_base_url="https://updates.example")
    with vigor_app(behind) as app:
        yield app.test_client(), app.extensions["vigor"]


def _token(client: FlaskClient, path: str) -> str:
    page = client.get(path, headers=PROXIED)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match
    return match.group(1)


def test_the_admin_signs_in_over_https_without_a_referer(
    proxied: tuple[FlaskClient, Services],
) -> None:
    client, services = proxied
    with services.db.sessions() as s:
        users.add_user(s, "ops@v.example", PASSWORD, role="admin", actor="t")
    data = {"email": "ops@v.example", "password": PASSWORD}
    refused = client.post("/admin/login", data=data, headers=PROXIED)
    assert refused.status_code == 400  # no token: still refused
    data["csrf_token"] = _token(client, "/admin/login")
    signed_in = client.post("/admin/login", data=data, headers=PROXIED)
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:500]
    assert signed_in.headers["Location"].endswith("/admin/")
    assert client.get("/admin/", headers=PROXIED).status_code == 200


def test_a_customer_signs_in_to_the_portal_over_https_without_a_referer(
    proxied: tuple[FlaskClient, Services],
) -> None:
    client, services = proxied
    make_product(services)
    today = utcnow().date()
    make_customer(services, "initech", ("maintenance", today - timedelta(days=10), today))
    key = make_license(services, "initech")
    data = {"key": key, "csrf_token": _token(client, "/portal/login")}
    signed_in = client.post("/portal/login", data=data, headers=PROXIED)
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:500]
