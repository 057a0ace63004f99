"""The admin API v1 (docs/admin-api.md) through Flask, on SQLite and PostgreSQL: scoped and
expiring tokens, each resource, cursor pages, Idempotency-Key and If-Match — and after every
refusal, nothing changed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.cli import cli
from server.domain import api_tokens, products, users
from server.domain import customers as customer_service
from server.domain.models import ApiToken, AuditEvent, Contract, Customer, License
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.functional.test_admin_lists import installation

API = "/api/v1/admin"
TODAY = datetime.now(UTC).date()


def new_token(services: Services, *scopes: str, expires_in: timedelta | None = None) -> str:
    with services.db.sessions() as s:
        _, secret = api_tokens.create_token(
            s,
            f"t-{secrets.token_hex(4)}",
            scopes=scopes,
            expires_in=expires_in,
            actor="test",
        )
    return secret


def bearer(secret: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **headers}


def state(services: Services) -> tuple[Any, ...]:
    """What a refused write must leave as it was."""
    with services.db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(Customer)),
            s.scalar(select(func.count()).select_from(Contract)),
            s.scalar(select(func.count()).select_from(AuditEvent)),
            tuple(s.execute(select(Customer.slug, Customer.name, Customer.contact_emails)).all()),
            tuple(s.execute(select(Contract.id, Contract.ends_on)).all()),
            tuple(s.execute(select(License.id, License.status, License.max_installations)).all()),
        )


@pytest.fixture
def product(services: Services) -> str:
    make_product(services)
    return "acme-erp"


@pytest.fixture
def writer(services: Services) -> str:
    return new_token(services, "customers:write", "customers:read", "products:read")


def test_scopes_bound_what_a_token_may_do(
    client: FlaskClient, services: Services, product: str
) -> None:
    make_customer(services, "initech")
    reader = new_token(services, "read")
    assert client.get(f"{API}/customers", headers=bearer(reader)).status_code == 200
    before = state(services)
    refused = client.post(f"{API}/customers", json={"slug": "globex"}, headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.get_json()["error"] == {
        "code": "forbidden",
        "message": "this token lacks the scope 'customers:write'",
        "scope": "customers:write",
    }
    assert state(services) == before

    # A write scope does not read, and no scope reaches another area.
    only_write = new_token(services, "customers:write")
    assert client.get(f"{API}/customers", headers=bearer(only_write)).status_code == 403
    assert client.get(f"{API}/audit", headers=bearer(reader)).status_code == 200
    publisher = new_token(services, "releases:publish")
    assert (
        client.get(f"{API}/audit", headers=bearer(publisher)).get_json()["error"]["scope"]
        == "audit:read"
    )

    # Tokens from before scopes do what their role meant.
    with services.db.sessions() as s:
        _, viewer = api_tokens.create_token(s, "old-viewer", role="viewer", actor="t")
        _, admin = api_tokens.create_token(s, "old-admin", role="admin", actor="t")
    before = state(services)
    assert client.get(f"{API}/customers", headers=bearer(viewer)).status_code == 200
    legacy = client.post(f"{API}/customers", json={"slug": "globex"}, headers=bearer(viewer))
    assert legacy.status_code == 403
    assert legacy.get_json()["error"]["message"] == "token role 'viewer' may not do this"
    assert state(services) == before
    made = client.post(f"{API}/customers", json={"slug": "globex"}, headers=bearer(admin))
    assert made.status_code == 201


def test_expired_revoked_and_missing_tokens_are_401(
    client: FlaskClient, services: Services, product: str
) -> None:
    expired = new_token(services, "read", expires_in=timedelta(hours=1))
    with services.db.sessions() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.expires_at.is_not(None))).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.commit()
    answer = client.get(f"{API}/customers", headers=bearer(expired))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "token_expired"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    live = new_token(services, "read", expires_in=timedelta(days=90))
    assert client.get(f"{API}/customers", headers=bearer(live)).status_code == 200
    with services.db.sessions() as s:
        token_id = s.scalars(select(ApiToken.id).order_by(ApiToken.id.desc())).first()
        api_tokens.revoke_token(s, token_id, actor="t")
    revoked = client.get(f"{API}/customers", headers=bearer(live))
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]["code"] == "token_invalid"
    assert client.get(f"{API}/customers").get_json()["error"]["code"] == "token_missing"


def test_token_names_are_unique_among_live_tokens(services: Services) -> None:
    with services.db.sessions() as s:
        first, _ = api_tokens.create_token(s, "billing", scopes=["read"], actor="t")
        with pytest.raises(Exception, match="already"):
            api_tokens.create_token(s, "billing", scopes=["read"], actor="t")
        s.rollback()
        api_tokens.revoke_token(s, first.id, actor="t")
        api_tokens.create_token(s, "billing", scopes=["read"], actor="t")  # the old one is dead
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 2


def test_cli_creates_a_scoped_expiring_token(app: Flask, services: Services) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        cli,
        [
            "token",
            "create",
            "billing",
            "--scope",
            "customers:write",
            "--scope",
            "read",
            "--expires-in",
            "90d",
        ],
    )
    assert made.exit_code == 0, made.output
    secret = made.output.splitlines()[0]
    with services.db.sessions() as s:
        token = api_tokens.authenticate(s, secret)
        assert token is not None
        assert token.scopes == ["customers:write", "read"]
        assert token.expires_at is not None
        assert timedelta(days=89) < token.expires_at - datetime.now(UTC) <= timedelta(days=90)
        assert s.scalars(select(AuditEvent.action)).all() == ["token.create"]
    bad = runner.invoke(cli, ["token", "create", "x", "--scope", "read", "--expires-in", "soon"])
    assert bad.exit_code != 0
    assert "expires_in: 'soon' is not a duration" in bad.output
    assert "Traceback" not in bad.output
    listing = runner.invoke(cli, ["token", "list"])
    assert "billing" in listing.output and "customers:write,read" in listing.output


def test_a_customer_a_contract_and_a_license_over_the_api(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    created = client.post(
        f"{API}/customers",
        json={"slug": "initech", "name": "Initech", "contact_emails": ["it@initech.example"]},
        headers=bearer(writer),
    )
    assert created.status_code == 201
    assert created.get_json()["name"] == "Initech"
    assert created.headers["ETag"]
    contract = client.post(
        f"{API}/contracts",
        json={
            "customer": "initech",
            "product": "acme-erp",
            "kind": "maintenance",
            "starts_on": (TODAY - timedelta(days=10)).isoformat(),
            "ends_on": (TODAY + timedelta(days=355)).isoformat(),
        },
        headers=bearer(writer),
    )
    assert contract.status_code == 201, contract.get_json()
    issue = {"customer": "initech", "product": "acme-erp", "max_installations": 5}
    once = bearer(writer, **{"Idempotency-Key": "crm-deal-8812"})
    issued = client.post(f"{API}/licenses", json=issue, headers=once)
    assert issued.status_code == 201
    lic = issued.get_json()
    key = lic["key"]
    # A lost answer is replayed, key included; the key is nowhere in the database in clear.
    assert client.post(f"{API}/licenses", json=issue, headers=once).get_json() == lic
    from server.domain.models import IdempotencyKey

    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(License)) == 1
        assert all(key not in (body or "") for body in s.scalars(select(IdempotencyKey.body)))
    assert key.startswith("vgl_") and key.startswith(lic["key_prefix"])
    shown = client.get(f"{API}/licenses/{lic['id']}", headers=bearer(writer)).get_json()
    assert "key" not in shown and shown["max_installations"] == 5
    for looked_up in (key, lic["key_prefix"]):
        found = client.post(
            f"{API}/licenses/lookup", json={"key": looked_up}, headers=bearer(writer)
        )
        assert found.get_json()["id"] == lic["id"]
    customer = client.get(f"{API}/customers/initech", headers=bearer(writer)).get_json()
    assert customer["maintenance"] == [
        {
            "product": "acme-erp",
            "status": "active",
            "ends_on": (TODAY + timedelta(days=355)).isoformat(),
        }
    ]
    capped = client.patch(
        f"{API}/licenses/{lic['id']}", json={"max_installations": None}, headers=bearer(writer)
    )
    assert capped.get_json()["max_installations"] is None
    suspended = client.post(f"{API}/licenses/{lic['id']}/suspend", headers=bearer(writer))
    assert suspended.get_json()["status"] == "suspended"
    revoked = client.post(f"{API}/licenses/{lic['id']}/revoke", headers=bearer(writer))
    assert revoked.get_json()["status"] == "revoked"
    before = state(services)
    again = client.post(f"{API}/licenses/{lic['id']}/reactivate", headers=bearer(writer))
    assert again.status_code == 409
    assert state(services) == before
    with services.db.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        actors = set(
            s.scalars(
                select(AuditEvent.actor).where(
                    AuditEvent.action.not_in(["product.add", "token.create"])
                )
            )
        )
    assert actions[-6:] == [
        "customer.add",
        "contract.add",
        "license.issue",
        "license.cap",
        "license.suspended",
        "license.revoked",
    ]
    assert len(actors) == 1 and actors.pop().startswith("token:t-")


def test_renewing_twice_with_one_idempotency_key_renews_once(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    ends = TODAY + timedelta(days=20)
    make_customer(services, "initech", ("maintenance", TODAY - timedelta(days=345), ends))
    make_license(services, "initech")
    with services.db.sessions() as s:
        contract_id = s.scalars(select(Contract.id)).one()
    headers = bearer(writer, **{"Idempotency-Key": "invoice-2026-0042"})
    first = client.post(f"{API}/contracts/{contract_id}/renew", json={"years": 1}, headers=headers)
    assert first.status_code == 201
    after_first = state(services)
    second = client.post(f"{API}/contracts/{contract_id}/renew", json={"years": 1}, headers=headers)
    assert second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["ETag"] == first.headers["ETag"]
    from server.domain.models import IdempotencyKey

    with services.db.sessions() as s:
        stored = s.scalars(select(IdempotencyKey.body)).one()
        assert stored and first.get_json()["ends_on"] not in stored  # encrypted at rest
    assert state(services) == after_first
    renewal = first.get_json()
    assert renewal["starts_on"] == (ends + timedelta(days=1)).isoformat()
    customer = client.get(f"{API}/customers/initech", headers=bearer(writer)).get_json()
    assert customer["maintenance"][0]["ends_on"] == renewal["ends_on"]
    with services.db.sessions() as s:
        renewals = s.scalars(select(AuditEvent).where(AuditEvent.action == "contract.renew")).all()
        assert len(renewals) == 1 and renewals[0].details["renews"] == contract_id

    # The same key with another request is a client bug: 422, nothing done.
    other = client.post(f"{API}/contracts/{contract_id}/renew", json={"years": 2}, headers=headers)
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert state(services) == after_first
    # Keys are the token's: another token's same key is another request.
    other_token = new_token(services, "customers:write", "customers:read")
    third = client.post(
        f"{API}/contracts/{contract_id}/renew",
        json={"years": 1},
        headers=bearer(other_token, **{"Idempotency-Key": "invoice-2026-0042"}),
    )
    assert third.status_code == 201 and third.get_json()["id"] != renewal["id"]


def test_a_refused_post_is_replayed_and_a_key_is_kept_a_day(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    headers = bearer(writer, **{"Idempotency-Key": "k-1"})
    refused = client.post(f"{API}/customers", json={"slug": "Not A Slug"}, headers=headers)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "slug"
    replay = client.post(f"{API}/customers", json={"slug": "Not A Slug"}, headers=headers)
    assert replay.status_code == 400 and replay.headers["Idempotent-Replayed"] == "true"
    from server.domain import idempotency

    with services.db.sessions() as s:
        assert idempotency.purge(s, datetime.now(UTC) + timedelta(hours=24)) == 0
        assert idempotency.purge(s, datetime.now(UTC) + timedelta(hours=49)) == 1
    bad_key = client.post(
        f"{API}/customers", json={"slug": "x"}, headers=bearer(writer, **{"Idempotency-Key": "é"})
    )
    assert bad_key.status_code == 400
    assert bad_key.get_json()["error"]["field"] == "Idempotency-Key"


def test_a_stale_if_match_is_412_and_changes_nothing(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    make_customer(services, "initech", ("maintenance", TODAY, TODAY + timedelta(days=30)))
    make_license(services, "initech")
    read = client.get(f"{API}/customers/initech", headers=bearer(writer))
    etag = read.headers["ETag"]
    assert client.get(f"{API}/customers/initech", headers=bearer(writer)).headers["ETag"] == etag
    changed = client.patch(
        f"{API}/customers/initech",
        json={"name": "Initech Ltd", "language": "es"},
        headers=bearer(writer, **{"If-Match": etag}),
    )
    assert changed.status_code == 200 and changed.get_json()["name"] == "Initech Ltd"
    assert changed.headers["ETag"] != etag
    before = state(services)
    stale = client.patch(
        f"{API}/customers/initech",
        json={"name": "Someone Else"},
        headers=bearer(writer, **{"If-Match": etag}),
    )
    assert stale.status_code == 412
    assert stale.get_json()["error"]["code"] == "precondition_failed"
    assert state(services) == before

    with services.db.sessions() as s:
        contract_id = s.scalars(select(Contract.id)).one()
        license_id = s.scalars(select(License.id)).one()
    contract_tag = client.get(f"{API}/contracts/{contract_id}", headers=bearer(writer)).headers[
        "ETag"
    ]
    ended = client.post(
        f"{API}/contracts/{contract_id}/end",
        json={"ends_on": TODAY.isoformat()},
        headers=bearer(writer, **{"If-Match": contract_tag}),
    )
    assert ended.status_code == 200 and ended.get_json()["ends_on"] == TODAY.isoformat()
    before = state(services)
    assert (
        client.post(
            f"{API}/contracts/{contract_id}/renew",
            headers=bearer(writer, **{"If-Match": contract_tag}),
        ).status_code
        == 412
    )
    license_tag = client.get(f"{API}/licenses/{license_id}", headers=bearer(writer)).headers["ETag"]
    client.post(f"{API}/licenses/{license_id}/suspend", headers=bearer(writer))
    assert (
        client.post(
            f"{API}/licenses/{license_id}/revoke",
            headers=bearer(writer, **{"If-Match": license_tag}),
        ).status_code
        == 412
    )
    with services.db.sessions() as s:
        assert s.scalars(select(License.status)).one() == "suspended"
        assert s.scalar(select(func.count()).select_from(Contract)) == before[1]


def test_cursor_pages_are_stable_and_capped(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    for n in range(7):
        make_customer(services, f"c{n}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/customers", query_string=query, headers=bearer(writer)).get_json()
        seen += [c["slug"] for c in page["items"]]
        pages += 1
        if pages == 1:
            make_customer(services, "late")  # added while paging: shows up once, at the end
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"c{n}" for n in range(7)] + ["late"]
    assert pages == 3
    for bad in ({"cursor": "garbage!"}, {"limit": "0"}, {"limit": "-1"}, {"cursor": "x" * 60}):
        answer = client.get(f"{API}/customers", query_string=bad, headers=bearer(writer))
        assert answer.status_code == 400
        assert answer.get_json()["error"]["field"] in {"cursor", "limit"}
    big = client.get(f"{API}/customers", query_string={"limit": "100000"}, headers=bearer(writer))
    assert len(big.get_json()["items"]) == 8


def test_filters(client: FlaskClient, services: Services, product: str, tmp_path: Path) -> None:
    token = new_token(services, "read")
    make_release(services, tmp_path, "1.0.0")
    make_customer(
        services,
        "current",
        ("maintenance", TODAY - timedelta(days=10), TODAY + timedelta(days=300)),
    )
    make_customer(
        services, "lapsing", ("maintenance", TODAY - timedelta(days=300), TODAY + timedelta(days=5))
    )
    make_customer(
        services, "lapsed", ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=40))
    )
    make_customer(services, "prospect")
    for slug in ("current", "lapsing", "lapsed"):
        make_license(services, slug)

    def slugs(path: str, **query: str) -> list[str]:
        answer = client.get(f"{API}/{path}", query_string=query, headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        return [item.get("slug") or item.get("customer") for item in answer.get_json()["items"]]

    assert slugs("customers", maintenance="lapsed") == ["lapsed"]
    assert slugs("customers", maintenance="expiring") == ["lapsing"]
    assert slugs("customers", maintenance="none") == ["prospect"]
    assert slugs("customers", q="LAPS") == ["lapsing", "lapsed"]
    assert slugs("customers", q="%") == []
    bad = client.get(
        f"{API}/customers", query_string={"maintenance": "gone"}, headers=bearer(token)
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "maintenance"
    assert slugs("contracts", ends_before=(TODAY + timedelta(days=30)).isoformat()) == [
        "lapsing",
        "lapsed",
    ]
    assert slugs("contracts", ends_after=TODAY.isoformat(), ends_before="") == [
        "current",
        "lapsing",
    ]
    assert slugs("licenses", customer="lapsed") == ["lapsed"]

    from tests.functional.test_check import check

    key = make_license(services, "current")
    check(client, key, installation_id="inst-current-0001")
    answer = client.get(
        f"{API}/installations", query_string={"customer": "current"}, headers=bearer(token)
    ).get_json()
    assert [(i["uid"], i["version"], i["customer"]) for i in answer["items"]] == [
        ("inst-current-0001", "1.0.0", "current")
    ]
    assert slugs("installations", version="2.0.0") == []
    assert (
        slugs("installations", seen_before=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
        == []
    )
    assert slugs(
        "installations", seen_after=(datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ) == ["current"]
    bad_time = client.get(
        f"{API}/installations", query_string={"seen_before": "yesterday"}, headers=bearer(token)
    )
    assert bad_time.status_code == 400 and bad_time.get_json()["error"]["field"] == "seen_before"

    audit = client.get(
        f"{API}/audit", query_string={"action": "license.", "limit": "2"}, headers=bearer(token)
    ).get_json()
    assert [e["action"] for e in audit["items"]] == ["license.issue", "license.issue"]
    assert audit["items"][0]["target"].startswith("current/")  # newest first
    assert audit["next"]
    since = client.get(
        f"{API}/audit",
        query_string={"since": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()},
        headers=bearer(token),
    ).get_json()
    assert since["items"] == []


def test_products_lines_and_portal_users(
    client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    token = new_token(
        services, "products:write", "products:read", "customers:write", "customers:read"
    )
    made = client.post(
        f"{API}/products",
        json={"slug": "acme-erp", "name": "Acme ERP", "grace_days": 14},
        headers=bearer(token),
    )
    assert made.status_code == 201 and made.get_json()["grace_days"] == 14
    duplicate = client.post(f"{API}/products", json={"slug": "acme-erp"}, headers=bearer(token))
    assert duplicate.status_code == 409
    make_release(services, tmp_path, "1.0.0")
    line = client.patch(
        f"{API}/products/acme-erp/lines/1.x",
        json={"status": "security-only"},
        headers=bearer(token),
    )
    assert line.status_code == 200, line.get_json()
    assert line.get_json()["lines"] == [{"name": "1.x", "status": "security-only"}]
    assert (
        client.patch(
            f"{API}/products/acme-erp/lines/9.x",
            json={"status": "end-of-life"},
            headers=bearer(token),
        ).status_code
        == 404
    )
    assert (
        client.patch(
            f"{API}/products/acme-erp/lines/1.x", json={"status": "retired"}, headers=bearer(token)
        ).get_json()["error"]["field"]
        == "status"
    )

    make_customer(services, "initech")
    invited = client.post(
        f"{API}/portal-users",
        json={"customer": "initech", "email": "Ana@Initech.example"},
        headers=bearer(token),
    )
    assert invited.status_code == 201
    user = invited.get_json()
    assert user["email"] == "ana@initech.example" and user["state"] == "invited"
    assert user["set_password_link"].startswith("http://localhost/portal/set-password/")
    disabled = client.post(f"{API}/portal-users/{user['id']}/disable", headers=bearer(token))
    assert disabled.get_json()["state"] == "disabled"
    listed = client.get(
        f"{API}/portal-users", query_string={"customer": "initech"}, headers=bearer(token)
    )
    assert [u["email"] for u in listed.get_json()["items"]] == ["ana@initech.example"]
    assert "set_password_link" not in listed.get_json()["items"][0]


def test_contracts_licenses_and_installations_by_customer_product_kind_and_status(
    client: FlaskClient, services: Services, product: str
) -> None:
    """The list filters the admin pages share (listings.contracts_matching, licenses_matching)."""
    token = new_token(services, "read")
    make_product(services, "acme-crm")
    year = (TODAY - timedelta(days=10), TODAY + timedelta(days=355))
    make_customer(services, "initech", ("maintenance", *year))
    make_customer(services, "globex", ("maintenance", *year), product="acme-crm")
    make_customer(services, "initrode", ("maintenance", *year), product=None)
    erp = make_license(services, "initech")
    crm = make_license(services, "initech", "acme-crm")
    make_license(services, "globex", "acme-crm")
    with services.db.sessions() as s:
        customer_service.add_contract(
            s,
            customer_service.get_customer(s, "initech"),
            "customization",
            *year,
            actor="test",
            product=products.get_product(s, "acme-crm"),
        )
        customer_service.set_license_status(
            s, customer_service.find_license(s, crm), "suspended", actor="test"
        )
    for n, key in enumerate((erp, crm)):
        installation(services, key, f"inst-{n}", "1.0.0", datetime.now(UTC))

    def found(path: str, **query: str) -> list[tuple[str, ...]]:
        answer = client.get(f"{API}/{path}", query_string=query, headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        return [
            (item["customer"], item.get("product") or "", item.get("kind") or item.get("uid", ""))
            for item in answer.get_json()["items"]
        ]

    assert found("contracts", customer="initech") == [
        ("initech", "acme-erp", "maintenance"),
        ("initech", "acme-crm", "customization"),
    ]
    assert found("contracts", product="acme-crm") == [
        ("globex", "acme-crm", "maintenance"),
        ("initech", "acme-crm", "customization"),
    ]
    assert found("contracts", kind="customization") == [("initech", "acme-crm", "customization")]
    assert found("contracts", customer="initrode") == [("initrode", "", "maintenance")]
    assert found("contracts", customer="init") == []  # a slug, not a search
    assert [c for c, *_ in found("licenses", product="acme-crm")] == ["initech", "globex"]
    assert [c for c, *_ in found("licenses", status="suspended")] == ["initech"]
    assert [c for c, *_ in found("licenses", customer="initech", product="acme-erp")] == ["initech"]
    assert [c for c, *_ in found("licenses", prefix=crm[:8])] == ["initech"]
    assert found("installations", product="acme-crm") == [("initech", "acme-crm", "inst-1")]
    assert found("installations", customer="globex") == []
    for path, name in (("contracts", "kind"), ("licenses", "status")):
        bad = client.get(f"{API}/{path}", query_string={name: "gone"}, headers=bearer(token))
        assert bad.status_code == 400 and bad.get_json()["error"]["field"] == name


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/customers", {}, 400, "slug"),
        ("post", "/customers", {"slug": 5}, 400, "slug"),
        ("post", "/customers", ["not", "an", "object"], 400, "body"),
        ("post", "/customers", {"slug": "x", "language": "tlh"}, 400, "language"),
        ("post", "/customers", {"slug": "initech"}, 409, "slug"),
        ("post", "/customers", {"slug": "nul\x00"}, 400, "slug"),
        (
            "post",
            "/contracts",
            {"customer": "initech", "starts_on": "2026-13-01", "ends_on": "2027-01-01"},
            400,
            "starts_on",
        ),
        (
            "post",
            "/contracts",
            {"customer": "initech", "starts_on": "2027-01-01", "ends_on": "2026-01-01"},
            400,
            "ends_on",
        ),
        (
            "post",
            "/contracts",
            {"customer": "nobody", "starts_on": "2026-01-01", "ends_on": "2027-01-01"},
            404,
            None,
        ),
        (
            "post",
            "/licenses",
            {"customer": "initech", "product": "acme-erp", "max_installations": 0},
            400,
            "max_installations",
        ),
        (
            "post",
            "/licenses",
            {"customer": "initech", "product": "acme-erp", "max_installations": True},
            400,
            "max_installations",
        ),
        ("post", "/licenses", {"customer": "initech", "product": "nope"}, 404, None),
        (
            "patch",
            "/customers/initech",
            {"contact_emails": ["not an address"]},
            400,
            "contact_emails",
        ),
        ("patch", "/customers/initech", {"contact_emails": "it@x.example"}, 400, "contact_emails"),
        ("patch", "/customers/nobody", {"name": "x"}, 404, None),
        ("post", "/licenses/lookup", {"key": "vgl_nothing"}, 404, None),
        ("post", "/contracts/999999/renew", {}, 404, None),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field_and_changes_nothing(
    client: FlaskClient,
    services: Services,
    product: str,
    writer: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    make_customer(services, "initech")
    before = state(services)
    answer = getattr(client, method)(f"{API}{path}", json=body, headers=bearer(writer))
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"].get("field") == field
    assert state(services) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "post",
            "/customers",
            {"slug": "globex", "contact_emails": ["it@globex.example", "ops\x00@globex.example"]},
            "contact_emails",
        ),
        (
            "patch",
            "/customers/initech",
            {"contact_emails": ["it\x00@initech.example"]},
            "contact_emails",
        ),
        ("post", "/customers", {"slug": "globex", "crm": {"ids": ["42\x00"]}}, "crm"),
        ("post", "/customers", {"slug": "globex", "crm": {"id\x00": 42}}, "crm"),
        ("post", "/customers", {"slug": "globex", "crm\x00": 42}, "body"),
    ],
)
def test_a_nul_anywhere_in_a_body_is_refused_naming_its_field(
    client: FlaskClient,
    services: Services,
    product: str,
    writer: str,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    """In a list, a nested object or a key, not only a top-level string (PostgreSQL refuses
    NUL in text; SQLite would keep it)."""
    make_customer(services, "initech")
    before = state(services)
    answer = getattr(client, method)(f"{API}{path}", json=body, headers=bearer(writer))
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()["error"]
    assert error["field"] == field
    assert error["message"].endswith("must not contain NUL characters")
    assert state(services) == before


def test_a_body_that_is_not_json_is_refused(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    before = state(services)
    as_form = client.post(f"{API}/customers", data={"slug": "x"}, headers=bearer(writer))
    assert as_form.status_code == 415
    broken = client.post(
        f"{API}/customers", data="{nope", content_type="application/json", headers=bearer(writer)
    )
    assert broken.status_code == 400 and broken.get_json()["error"]["field"] == "body"
    # Nested deeper than Python's parser recurses: refused, not a 500.
    deep = '{"slug": "x", "crm": ' + "[" * 100_000 + "]" * 100_000 + "}"
    too_deep = client.post(
        f"{API}/customers", data=deep, content_type="application/json", headers=bearer(writer)
    )
    assert too_deep.status_code == 400, too_deep.get_data()
    assert too_deep.get_json()["error"]["field"] == "body"
    assert state(services) == before


def test_two_renewals_from_one_read_renew_once(
    client: FlaskClient, services: Services, product: str, writer: str
) -> None:
    """Two clerks (or a webhook with no Idempotency-Key, retried) renew from the same read:
    the first renews, the second is told the contract changed — it has been renewed since."""
    make_customer(services, "initech", ("maintenance", TODAY, TODAY + timedelta(days=30)))
    with services.db.sessions() as s:
        contract_id = s.scalars(select(Contract.id)).one()
    read = client.get(f"{API}/contracts/{contract_id}", headers=bearer(writer))
    assert read.get_json()["renewed_by"] is None
    guarded = bearer(writer, **{"If-Match": read.headers["ETag"]})
    first = client.post(f"{API}/contracts/{contract_id}/renew", headers=guarded)
    assert first.status_code == 201
    before = state(services)
    second = client.post(f"{API}/contracts/{contract_id}/renew", headers=guarded)
    assert second.status_code == 412
    assert state(services) == before
    again = client.get(f"{API}/contracts/{contract_id}", headers=bearer(writer)).get_json()
    assert again["renewed_by"] == first.get_json()["id"]


def test_the_tokens_page_makes_scoped_expiring_tokens(
    client: FlaskClient, services: Services, product: str
) -> None:
    import re

    from tests.functional.test_admin_web import sign_in, token

    with services.db.sessions() as s:
        users.add_user(s, "admin@example.com", "correct horse battery", role="admin", actor="t")
    assert sign_in(client, "admin@example.com", "correct horse battery").status_code == 303
    csrf = token(client, "/admin/tokens")
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert 'value="customers:write"' in page and 'name="expires_in"' in page
    none_ticked = client.post(
        "/admin/tokens", data={"csrf_token": csrf, "name": "crm", "expires_in": "90d"}
    )
    assert none_ticked.status_code == 400
    assert "choose at least one scope" in none_ticked.get_data(as_text=True)
    made = client.post(
        "/admin/tokens",
        data={
            "csrf_token": csrf,
            "name": "crm",
            "scopes": ["customers:write", "read"],
            "expires_in": "90d",
        },
    )
    assert made.status_code == 200
    secret = re.search(r'<pre id="new-token">(vgt_[^<]+)</pre>', made.get_data(as_text=True))
    assert secret
    with services.db.sessions() as s:
        token = s.scalars(select(ApiToken)).one()
        assert token.scopes == ["customers:write", "read"]
        assert token.expires_at is not None
        assert timedelta(days=89) < token.expires_at - datetime.now(UTC) <= timedelta(days=90)
    listing = client.get("/admin/tokens").get_data(as_text=True)
    row = listing.split('<td data-label="Name">crm</td>', 1)[1].split("</tr>", 1)[0]
    assert "customers:write" in row and "read" in row and "active" in row
    twice = client.post(
        "/admin/tokens", data={"csrf_token": csrf, "name": "crm", "scopes": ["read"]}
    )
    assert twice.status_code == 400
    assert "already" in twice.get_data(as_text=True)
    api = client.application.test_client()
    assert api.get(f"{API}/customers", headers=bearer(secret.group(1))).status_code == 200


def test_every_admin_route_is_documented_with_the_scope_its_view_checks(app: Flask) -> None:
    import re

    document = app.test_client().get("/api/v1/openapi.json").get_json()
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", re.sub(r"\([^)]*\)", "", rule.rule))
        view = app.view_functions[rule.endpoint]
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = document["paths"][path][method.lower()]
            assert operation["x-scope"] == view.required_scope, (method, path)
            assert operation["security"] == [{"bearer": [view.required_scope]}]
            checked += 1
    assert checked >= 26
