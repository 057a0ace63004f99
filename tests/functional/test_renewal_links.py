"""Per-customer renewal links in check answers, the portal and offline bundles: one product
template, filled in for each license, with one cached catalogue for all."""

from __future__ import annotations

import json
import secrets
import tarfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.cli import cli
from server.services import Services
from tests.common.factories import (
    license_row,
    make_customer,
    make_license,
    make_product,
    make_release,
)
from tests.functional.test_portal import sign_in

TEMPLATE = "https://shop.example/renew?customer={customer}&license={license}&product={product}&ends={ends_on}"
TODAY = datetime.now(UTC).date()


def check(client: FlaskClient, key: str) -> dict[str, Any]:
    body = {
        "product": "acme-erp",
        "version": "1.0.0",
        "platform": "linux-x86_64",
        "installation_id": "inst-" + secrets.token_hex(8),
        "nonce": secrets.token_hex(16),
    }
    response = client.post("/api/v1/check", json=body, headers={"Authorization": f"License {key}"})
    assert response.status_code == 200, response.get_json()
    signed: dict[str, Any] = response.get_json()["signed"]
    return signed


def expected(customer: str, license_id: int, ends: date) -> str:
    return (
        f"https://shop.example/renew?customer={customer}&license={license_id}"
        f"&product=acme-erp&ends={ends.isoformat()}"
    )


def test_each_license_gets_its_own_link_in_checks_the_portal_and_bundles(
    app: Flask, client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    make_product(services, renewal_url=TEMPLATE)
    make_release(services, tmp_path, "1.0.0", published_at=datetime.now(UTC) - timedelta(days=400))
    make_release(services, tmp_path, "1.1.0", published_at=datetime.now(UTC) - timedelta(days=10))
    lapsed_end, active_end = TODAY - timedelta(days=60), TODAY + timedelta(days=10)
    make_customer(services, "initech", ("maintenance", TODAY - timedelta(days=400), lapsed_end))
    make_customer(services, "globex", ("maintenance", TODAY - timedelta(days=300), active_end))
    keys = {c: make_license(services, c) for c in ("initech", "globex")}
    ids = {c: license_row(services, k).id for c, k in keys.items()}

    lapsed = check(client, keys["initech"])
    link = expected("initech", ids["initech"], lapsed_end)
    assert lapsed["entitlement"]["renewal_url"] == link
    assert lapsed["renewal"]["renewal_url"] == link
    # The same cached catalogue answers the next license with that license's link.
    expiring = check(client, keys["globex"])
    assert expiring["entitlement"]["renewal_url"] == expected("globex", ids["globex"], active_end)
    assert keys["globex"] not in json.dumps(expiring)

    assert sign_in(client, keys["initech"]).status_code == 303
    page = client.get("/portal/").get_data(as_text=True)
    assert f'href="{link.replace("&", "&amp;")}"' in page

    out = tmp_path / "initech.vgb"
    result = app.test_cli_runner().invoke(
        cli, ["bundle", "export", "--license", keys["initech"], "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        member = tar.extractfile("bundle.json")
        assert member is not None
        statement = json.loads(member.read())["signed"]
    assert statement["entitlement"]["renewal_url"] == link


def test_changing_the_template_reaches_the_next_check_and_a_bad_one_changes_nothing(
    app: Flask, client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    make_product(services)
    make_release(services, tmp_path, "1.0.0", published_at=datetime.now(UTC) - timedelta(days=1))
    make_customer(services, "initech", ("maintenance", TODAY, TODAY + timedelta(days=365)))
    key = make_license(services, "initech")
    license_id = license_row(services, key).id
    before = check(client, key)["entitlement"]["renewal_url"]
    assert before == services.settings.renewal_url

    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["product", "renewal-url", "acme-erp", "javascript:{customer}"])
    assert result.exit_code == 1
    assert "must be an http:// or https:// URL" in result.output
    assert check(client, key)["entitlement"]["renewal_url"] == before

    result = runner.invoke(cli, ["product", "renewal-url", "acme-erp", TEMPLATE])
    assert result.exit_code == 0, result.output
    after = check(client, key)["entitlement"]["renewal_url"]
    assert after == expected("initech", license_id, TODAY + timedelta(days=365))
