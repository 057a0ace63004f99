"""The admin web as its users meet it: sign-in, roles, CSRF, and releases uploaded through the form."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.domain import users
from server.domain.models import Release
from server.services import Services
from tests.common.factories import make_product

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(services: Services) -> dict[str, str]:
    with services.db.sessions() as s:
        for role in ("admin", "publisher", "viewer"):
            users.add_user(s, f"{role}@example.com", PASSWORD, role=role, actor="test")
    make_product(services)
    return {role: f"{role}@example.com" for role in ("admin", "publisher", "viewer")}


def token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert match, page[:500]
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, next_url: str = "") -> Any:
    csrf = token(client, "/admin/login")
    return client.post(
        f"/admin/login{next_url}", data={"email": email, "password": password, "csrf_token": csrf}
    )


def test_pages_need_a_signed_in_user(client: FlaskClient, accounts: dict[str, str]) -> None:
    for path in ("/admin/", "/admin/releases", "/admin/releases/new"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/admin/login" in response.headers["Location"]


def test_sign_in_and_wrong_password(client: FlaskClient, accounts: dict[str, str]) -> None:
    wrong = sign_in(client, accounts["admin"], "not the password")
    assert wrong.status_code == 400
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    ok = sign_in(client, accounts["admin"])
    assert ok.status_code == 303
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("?next=/admin/releases", "/admin/releases"),
        ("?next=https://evil.example/x", "/admin/"),
        ("?next=//evil.example/x", "/admin/"),
    ],
)
def test_next_redirects_stay_on_this_site(
    client: FlaskClient, accounts: dict[str, str], target: str, lands: str
) -> None:
    response = sign_in(client, accounts["viewer"], next_url=target)
    assert response.status_code == 303
    assert response.headers["Location"] == lands


def releases_listing(client: FlaskClient) -> str:
    """The releases page without its CSRF tokens (they carry a timestamp)."""
    page = client.get("/admin/releases").get_data(as_text=True)
    return re.sub(r"<input[^>]*csrf_token[^>]*>", "", page)


def test_a_post_without_csrf_token_is_refused(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    assert (
        client.post(
            "/admin/login", data={"email": accounts["admin"], "password": PASSWORD}
        ).status_code
        == 400
    )
    sign_in(client, accounts["admin"])
    assert client.post("/admin/logout").status_code == 400
    before = releases_listing(client)
    upload = client.post(
        "/admin/releases/new",
        content_type="multipart/form-data",
        data={
            "product": "acme-erp",
            "version": "9.0",
            "kind": "update",
            "artifact": (io.BytesIO(b"x"), "a.tgz"),
        },
    )
    assert upload.status_code == 400
    assert releases_listing(client) == before


def test_logout_kills_copied_cookies(
    app: Flask, client: FlaskClient, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["admin"])
    copied = app.test_client()
    for cookie in client._cookies.values():
        copied.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    assert copied.get("/admin/").status_code == 200
    csrf = token(client, "/admin/")
    assert client.post("/admin/logout", data={"csrf_token": csrf}).status_code == 303
    assert copied.get("/admin/").status_code == 302, "a copy of the old cookie no longer works"


def test_viewers_cannot_upload(client: FlaskClient, accounts: dict[str, str]) -> None:
    sign_in(client, accounts["viewer"])
    assert client.get("/admin/releases/new").status_code == 403


def upload_form(client: FlaskClient, **fields: Any) -> Any:
    csrf = token(client, "/admin/releases/new")
    data = {
        "csrf_token": csrf,
        "product": "acme-erp",
        "kind": "update",
        "channel": "stable",
        "platform.artifact": "linux-x86_64",
        **fields,
    }
    return client.post("/admin/releases/new", data=data, content_type="multipart/form-data")


def test_upload_through_the_form_publishes(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    content = b"release bytes" * 1000
    response = upload_form(
        client,
        version="2.1.0",
        notes="**Faster** reports. <img src=x onerror=alert(1)>",
        artifact=(io.BytesIO(content), "acme-2.1.0.tar.gz"),
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "acme-erp 2.1.0" in page
    assert "<strong>Faster</strong> reports." in page, "notes are Markdown"
    assert "<img" not in page, "and sanitized"
    assert hashlib.sha256(content).hexdigest() in page
    assert "published." in page


def test_a_refused_upload_keeps_the_input_and_publishes_nothing(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    response = upload_form(
        client,
        version="not a version",
        notes="My careful notes",
        artifact=(io.BytesIO(b"bytes"), "a.tar.gz"),
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "“not a version” is not a version number" in page
    assert "My careful notes" in page, "what the user typed is kept"
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 0
    assert list(services.store.digests()) == []
    assert not any((services.settings.storage_root / ".tmp").glob("*")), "no temp file left behind"


def test_one_release_with_a_file_per_platform(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    form = client.get("/admin/releases/new?files=3").get_data(as_text=True)
    assert 'name="artifact-3"' in form and 'name="platform.artifact-3"' in form
    linux, windows = b"linux build" * 100, b"windows build" * 100
    response = upload_form(
        client,
        version="2.2.0",
        artifact=(io.BytesIO(linux), "acme-2.2.0-linux.tar.gz"),
        **{
            "platform.artifact-2": "windows-x86_64",
            "artifact-2": (io.BytesIO(windows), "acme-2.2.0-windows.zip"),
            "platform.artifact-3": "",
            "artifact-3": (io.BytesIO(b""), ""),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    for platform, content in (("linux-x86_64", linux), ("windows-x86_64", windows)):
        assert platform in page and hashlib.sha256(content).hexdigest() in page
    assert len(list(services.store.digests())) == 2, "the empty third row stored nothing"


@pytest.mark.parametrize(
    ("second_row", "message"),
    [
        (("", b"mystery", "m.zip"), "Give the platform of every file"),
        (("windows-x86_64", b"", ""), "No file was chosen for windows-x86_64."),
        (("linux-x86_64", b"again", "b.zip"), "linux-x86_64 is given twice"),
    ],
    ids=["file-without-platform", "platform-without-file", "same-platform-twice"],
)
def test_file_rows_that_do_not_pair_up_are_refused_on_the_form(
    client: FlaskClient,
    services: Services,
    accounts: dict[str, str],
    second_row: tuple[str, bytes, str],
    message: str,
) -> None:
    sign_in(client, accounts["publisher"])
    platform, content, filename = second_row
    response = upload_form(
        client,
        version="2.3.0",
        artifact=(io.BytesIO(b"linux"), "a.tar.gz"),
        **{"platform.artifact-2": platform, "artifact-2": (io.BytesIO(content), filename)},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert 'value="2.3.0"' in page, "the input is kept"
    assert page.count('class="file-row"') == 2, "both file rows are shown again"
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 0
    assert list(services.store.digests()) == []


def test_yank_and_rollout_from_the_release_page(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    upload_form(client, version="3.0.0", artifact=(io.BytesIO(b"three"), "a.tar.gz"))
    page = "/admin/releases/acme-erp/3.0.0"
    csrf = token(client, page)
    assert (
        client.post(f"{page}/rollout", data={"csrf_token": csrf, "percent": "25"}).status_code
        == 303
    )
    assert "Rollout of acme-erp 3.0.0 set to 25%." in client.get(page).get_data(as_text=True)
    one_click = client.post(
        f"{page}/yank", data={"csrf_token": csrf, "reason": "corrupts invoices"}
    )
    assert one_click.status_code == 200, "a yank without its confirmation asks for it"
    asked = one_click.get_data(as_text=True)
    assert "it is no longer offered" in asked and "Nothing has been done yet." in asked
    assert 'value="corrupts invoices"' in asked, "the reason typed is carried to the confirmation"
    assert "yanked" not in client.get(page).get_data(as_text=True)
    confirmed = {"csrf_token": csrf, "reason": "corrupts invoices", "confirm": "yes"}
    assert client.post(f"{page}/yank", data=confirmed).status_code == 303
    assert "corrupts invoices" in client.get(page).get_data(as_text=True)


def test_upload_without_a_signing_key_is_a_form_error_not_a_crash(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    for key in services.settings.keys_dir.glob("online-*.pem"):
        key.unlink()
    services.keyring = type(services.keyring)(services.settings.keys_dir)  # forget loaded keys
    response = upload_form(client, version="4.0.0", artifact=(io.BytesIO(b"four"), "a.tar.gz"))
    assert response.status_code == 400
    assert "no key for the" in response.get_data(as_text=True)
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 0
    assert list(services.store.digests()) == []
    assert not any((services.settings.storage_root / ".tmp").glob("*")), "no temp file left behind"


def test_admin_issues_a_license_that_is_shown_once_and_works(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    from server.domain import customers as customer_service
    from server.domain.secrets import secret_hash

    with services.db.sessions() as s:
        customer_service.add_customer(s, "initech", "Initech", actor="t")
    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/customers/initech")
    page = client.post(
        "/admin/customers/initech/licenses",
        data={"csrf_token": csrf, "product": "acme-erp", "max_installations": "3"},
    )
    assert page.status_code == 200
    key = re.search(r'<pre id="new-key">(vgl_[^<]+)</pre>', page.get_data(as_text=True))
    assert key
    with services.db.sessions() as s:
        lic = customer_service.find_license(s, key.group(1))
        assert lic.key_hash == secret_hash(key.group(1))
        assert lic.max_installations == 3
    again = client.get("/admin/customers/initech").get_data(as_text=True)
    assert key.group(1) not in again, "shown once"
    assert key.group(1)[:10] in again


def test_contracts_added_and_renewed_from_the_customer_page(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    from server.domain import customers as customer_service

    with services.db.sessions() as s:
        customer_service.add_customer(s, "umbrella", "Umbrella", actor="t")
    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/customers/umbrella")
    bad = client.post(
        "/admin/customers/umbrella/contracts",
        data={
            "csrf_token": csrf,
            "kind": "maintenance",
            "starts_on": "2026-05-01",
            "ends_on": "2026-01-01",
        },
    )
    assert bad.status_code == 400
    assert "must not be before" in bad.get_data(as_text=True)
    ok = client.post(
        "/admin/customers/umbrella/contracts",
        data={
            "csrf_token": csrf,
            "kind": "maintenance",
            "product": "acme-erp",
            "starts_on": "2025-01-01",
            "ends_on": "2025-12-31",
        },
    )
    assert ok.status_code == 303
    with services.db.sessions() as s:
        contract = customer_service.get_customer(s, "umbrella").contracts[0]
    renewed = client.post(
        f"/admin/customers/umbrella/contracts/{contract.id}/renew",
        data={"csrf_token": csrf, "confirm": "yes"},
    )
    assert renewed.status_code == 303
    with services.db.sessions() as s:
        assert len(customer_service.get_customer(s, "umbrella").contracts) == 2
    listing = client.get("/admin/customers").get_data(as_text=True)
    assert "Umbrella" in listing


def test_viewers_and_publishers_cannot_issue_licenses(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    from server.domain import customers as customer_service

    with services.db.sessions() as s:
        customer_service.add_customer(s, "globex", "Globex", actor="t")
    sign_in(client, accounts["publisher"])
    csrf = token(client, "/admin/customers/globex")
    refused = client.post(
        "/admin/customers/globex/licenses", data={"csrf_token": csrf, "product": "acme-erp"}
    )
    assert refused.status_code == 403
    with services.db.sessions() as s:
        assert customer_service.get_customer(s, "globex").licenses == []


def test_audit_log_shows_who_did_what_and_filters(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["publisher"])
    upload_form(client, version="5.0.0", artifact=(io.BytesIO(b"five"), "a.tar.gz"))
    page = client.get("/admin/audit").get_data(as_text=True)
    assert (
        "release.publish" in page and "publisher@example.com" in page and "acme-erp 5.0.0" in page
    )
    only_logins = client.get("/admin/audit?action=user.login").get_data(as_text=True)
    assert "user.login" in only_logins
    assert "acme-erp 5.0.0" not in only_logins
    nobody = client.get("/admin/audit?actor=nobody@example.com").get_data(as_text=True)
    assert "Nothing recorded for this filter." in nobody


def test_api_tokens_created_and_revoked_from_the_ui(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    from server.domain.models import ApiToken

    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/tokens")
    blank = client.post("/admin/tokens", data={"csrf_token": csrf, "name": "  ", "role": "viewer"})
    assert blank.status_code == 400
    assert "name" in blank.get_data(as_text=True) and "is required" in blank.get_data(as_text=True)
    page = client.post("/admin/tokens", data={"csrf_token": csrf, "name": "CI", "role": "viewer"})
    assert page.status_code == 200
    secret = re.search(r'<pre id="new-token">(vgt_[^<]+)</pre>', page.get_data(as_text=True))
    assert secret
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1, (
            "the blank one was not made"
        )
    api = client.application.test_client()  # no session cookie: the bearer token alone
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    assert api.get("/api/v1/admin/releases/acme-erp", headers=bearer).status_code == 200
    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert secret.group(1) not in listing, "shown once"
    assert "CI" in listing and "never" not in listing.split("CI", 1)[1].split("</tr>")[0]
    with services.db.sessions() as s:
        token_id = s.scalars(select(ApiToken.id)).one()
    revoked = client.post(
        f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert revoked.status_code == 303
    assert api.get("/api/v1/admin/releases/acme-erp", headers=bearer).status_code == 401
    assert "revoked" in client.get("/admin/tokens").get_data(as_text=True)
    assert "token.revoke" in client.get("/admin/audit").get_data(as_text=True)


@pytest.mark.parametrize("role", ["publisher", "viewer"])
def test_only_admins_manage_api_tokens(
    client: FlaskClient, services: Services, accounts: dict[str, str], role: str
) -> None:
    from server.domain.models import ApiToken

    sign_in(client, accounts[role])
    assert client.get("/admin/tokens").status_code == 403
    csrf = token(client, "/admin/")
    refused = client.post("/admin/tokens", data={"csrf_token": csrf, "name": "CI", "role": "admin"})
    assert refused.status_code == 403
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_customer_language_set_from_the_customer_page(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    from server.domain import customers as customer_service

    with services.db.sessions() as s:
        customer_service.add_customer(s, "soylent", "Soylent", actor="t")
    sign_in(client, accounts["admin"])
    csrf = token(client, "/admin/customers/soylent")
    bad = client.post(
        "/admin/customers/soylent/language", data={"csrf_token": csrf, "language": "xx"}
    )
    assert bad.status_code == 400 and "must be one of en, es" in bad.get_data(as_text=True)
    with services.db.sessions() as s:
        assert customer_service.get_customer(s, "soylent").language == ""
    ok = client.post(
        "/admin/customers/soylent/language", data={"csrf_token": csrf, "language": "es"}
    )
    assert ok.status_code == 303
    with services.db.sessions() as s:
        assert customer_service.get_customer(s, "soylent").language == "es"
    assert 'value="es" selected' in client.get("/admin/customers/soylent").get_data(as_text=True)
    assert "customer.language" in client.get("/admin/audit").get_data(as_text=True)
