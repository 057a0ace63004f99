"""Behind a TLS-terminating proxy (VIGOR_TRUST_PROXY_HOPS=1, ``X-Forwarded-Proto: https``) the
forms work as a browser sends them: with a same-origin ``Referer``, since every page says
``Referrer-Policy: same-origin`` (with ``no-referrer`` browsers sent none and Flask-WTF's strict
https check refused every form). The CSRF token is still required, and so is the Referer: a post
without one, or from another site, is refused."""

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
SITE = "https://localhost"  # the test client's host, as the proxy forwards it


def posted_from(path: str) -> dict[str, str]:
    """A form post's headers as a browser sends them from ``path`` of this site."""
    return {**PROXIED, "Referer": f"{SITE}{path}"}


@pytest.fixture
def proxied(settings: Settings) -> Iterator[tuple[FlaskClient, Services]]:
    behind = settings.with_(trust_proxy_hops=1, public_base_url="https://updates.example")
    with vigor_app(behind) as app:
        yield app.test_client(), app.extensions["vigor"]


def _token(client: FlaskClient, path: str) -> str:
    page = client.get(path, headers=PROXIED)
    assert page.headers["Referrer-Policy"] == "same-origin"
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match
    return match.group(1)


def test_the_admin_signs_in_over_https_with_a_same_origin_referer_only(
    proxied: tuple[FlaskClient, Services],
) -> None:
    client, services = proxied
    with services.db.sessions() as s:
        users.add_user(s, "ops@v.example", PASSWORD, role="admin", actor="t")
    data = {"email": "ops@v.example", "password": PASSWORD}
    refused = client.post("/admin/login", data=data, headers=posted_from("/admin/login"))
    assert refused.status_code == 400  # no token: still refused
    data["csrf_token"] = _token(client, "/admin/login")
    for headers in (PROXIED, {**PROXIED, "Referer": "https://elsewhere.example/admin/login"}):
        refused = client.post("/admin/login", data=data, headers=headers)
        assert refused.status_code == 400, "no Referer, or another site's: refused"
        assert client.get("/admin/", headers=PROXIED).status_code == 302, "still signed out"
    signed_in = client.post("/admin/login", data=data, headers=posted_from("/admin/login"))
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:500]
    assert signed_in.headers["Location"].endswith("/admin/")
    assert client.get("/admin/", headers=PROXIED).status_code == 200


def test_a_customer_signs_in_to_the_portal_over_https(
    proxied: tuple[FlaskClient, Services],
) -> None:
    client, services = proxied
    make_product(services)
    today = utcnow().date()
    make_customer(services, "initech", ("maintenance", today - timedelta(days=10), today))
    key = make_license(services, "initech")
    data = {"key": key, "csrf_token": _token(client, "/portal/login")}
    signed_in = client.post("/portal/login", data=data, headers=posted_from("/portal/login"))
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:500]
