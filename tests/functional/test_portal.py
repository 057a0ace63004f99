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
    make_release_history,
)

TODAY = datetime.now(UTC).date()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.fixture
def keys(services: Services, tmp_path: Path) -> dict[str, str]:
    make_product(services)
    make_release_history(services, tmp_path)
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
    assert 'class="status alert lapsed"' in page
    assert (
        "Renew maintenance to receive 2 newer releases, including 1 security revision; newest: 2.0.0."
        in page
    )
    assert "Renew maintenance" in page
    assert ">1.0.0<" in page and ">2.0.0<" not in page


def test_active_customer_has_no_banner_and_can_download(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    sign_in(client, keys["active"])
    page = client.get("/portal/").get_data(as_text=True)
    assert 'class="status ok active"' in page and "Renew" not in page
    link = re.search(r'<th scope="row" class="version">2\.0\.0</th>.*?href="([^"]+)"', page, re.S)
    assert link
    assert link.group(1).startswith("/portal/download/")
    with client.get(link.group(1)) as response:
        assert response.status_code == 200
        assert (
            hashlib.sha256(response.get_data()).hexdigest()
            == hashlib.sha256(app_archive("2.0.0")).hexdigest()
        )
    # The link is tied to this session's license, never a bearer link: not without the
    # session, not with another license's session, not on the agents' route without the key.
    token = link.group(1).removeprefix("/portal/download/")
    with client.application.test_client() as stranger:
        assert stranger.get(link.group(1)).status_code == 302  # to the sign-in page
        assert stranger.get(f"/api/v1/download/{token}").status_code == 403
        sign_in(stranger, keys["lapsed"])
        refused = stranger.get(link.group(1))
        assert refused.status_code == 403
        # A browser's refusal is the site's page (JSON is for /api/).
        assert refused.mimetype == "text/html"
        assert "Not allowed" in refused.get_data(as_text=True)


def test_portal_speaks_the_customer_s_language(client: FlaskClient, keys: dict[str, str]) -> None:
    sign_in(client, keys["spanish"])
    page = client.get("/portal/").get_data(as_text=True)
    assert "Renovar el mantenimiento" in page
    assert '<html lang="es">' in page
    assert "El mantenimiento terminó el" in page, "the engine's sentences too"
    assert "paquete de actualización" in page and "security" not in page
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


def _install(services: Services, key: str, *versions: str) -> None:
    from server.domain.models import Installation

    with services.db.sessions() as s:
        lic = customers.find_license(s, key)
        for n, version in enumerate(versions):
            s.add(
                Installation(
                    license_id=lic.id,
                    uid=f"inst-{n}",
                    version=version,
                    platform="linux-x86_64",
                    channel="stable",
                )
            )
        s.commit()


def test_notes_since_the_installed_version_are_rendered_and_sanitized(
    client: FlaskClient, services: Services, keys: dict[str, str], tmp_path: Path
) -> None:
    make_release(
        services,
        tmp_path,
        "2.1.0",
        notes="## Fixes\n\n- **Invoices** round half-even <script>alert(1)</script>\n"
        "- [details](javascript:alert(1)) and [advisory](https://vendor.example/sa-1)",
    )
    _install(services, keys["active"], "1.1.0", "2.0.0")
    sign_in(client, keys["active"])
    page = client.get("/portal/").get_data(as_text=True)
    assert "What is new since 1.1.0" in page
    assert "Your installations run 1.1.0, 2.0.0." in page
    new_section = page.split('id="whats-new"', 1)[1].split("</section>", 1)[0]
    assert "2.1.0" in new_section and "2.0.0" in new_section and "1.0.0" not in new_section
    assert "<strong>Invoices</strong>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert 'href="javascript:' not in page
    assert '<a href="https://vendor.example/sa-1" rel="noopener noreferrer">advisory</a>' in page


def test_offline_bundle_from_the_portal(
    client: FlaskClient, keys: dict[str, str], services: Services
) -> None:
    import io
    import json
    import tarfile

    sign_in(client, keys["lapsed"])
    with client.get("/portal/bundle?platform=linux-x86_64") as response:
        assert response.status_code == 200
        assert re.search(
            r"attachment; filename=acme-erp-lapsed-\d{8}-linux-x86_64\.vgb",
            response.headers["Content-Disposition"],
        )
        data = response.get_data()
        assert int(response.headers["Content-Length"]) == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        statement = json.loads(tar.extractfile("bundle.json").read())["signed"]  # type: ignore[union-attr]
    assert names[-1] == "bundle.json" and "root/1.json" in names
    assert sorted(statement["releases"]) == ["1.0.0"], "the lapsed customer's cutoff holds"
    assert statement["entitlement"]["status"] == "lapsed"
    assert not list(services.settings.instance_dir.glob("bundle-*")), "no work file left behind"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("platform=linux-x86_64&since=not-a-version", "not-a-version is not a version number."),
        ("platform=linux-x86_64&since=9.0", "No release newer than 9.0 is available to you"),
        (
            "platform=solaris-sparc",
            "solaris-sparc is not a platform of this product; choose one of: linux-x86_64.",
        ),
    ],
)
def test_a_bundle_that_cannot_be_made_is_explained_on_the_page(
    client: FlaskClient, keys: dict[str, str], query: str, says: str
) -> None:
    sign_in(client, keys["active"])
    response = client.get(f"/portal/bundle?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert says in response.get_data(as_text=True)


def test_bundle_needs_a_signed_in_customer(client: FlaskClient, keys: dict[str, str]) -> None:
    response = client.get("/portal/bundle?platform=linux-x86_64")
    assert response.status_code == 302
    assert "/portal/login" in response.headers["Location"]
