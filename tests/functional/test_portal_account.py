"""Around every portal page: who is signed in and sign-out at the top, the language switcher,
a portal user's own password change, the vendor's brand; and what each download tells."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.config import ConfigError, Settings
from server.domain.branding import contrast_ratio
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import app_archive
from tests.functional import test_portal, test_portal_users
from tests.functional.test_portal import sign_in
from tests.functional.test_portal_status import visible
from tests.functional.test_portal_users import PASSWORD, csrf, invite, set_password
from tests.functional.test_portal_users import sign_in as user_sign_in

keys = test_portal.keys  # the fixtures: customers with keys, and with portal users
world = test_portal_users.world

NEW_PASSWORD = "another long passphrase"


def header(page: str) -> str:
    return visible(page.split("<header", 1)[1].split("</header>", 1)[0].join(["<x", "</x>"]))


def test_the_header_says_who_is_signed_in_and_signs_out_at_the_top(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    sign_in(client, keys["active"])
    page = client.get("/portal/").get_data(as_text=True)
    top = page.split("</header>", 1)[0]
    assert f"Signed in as License {keys['active'][:8]}" in header(page)
    assert "Active" in header(page), "the customer's name"
    assert 'action="/portal/logout"' in top, "sign-out is in the header"
    assert "Change password" not in top, "a key has no password to change"
    assert keys["active"] not in page, "never the whole key"


def test_download_details_are_size_checksum_and_platform(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    sign_in(client, keys["active"])
    page = client.get("/portal/").get_data(as_text=True)
    row = page.split('class="version">2.0.0</th>', 1)[1].split("</tr>", 1)[0]
    archive = app_archive("2.0.0")
    assert hashlib.sha256(archive).hexdigest() in row
    assert "linux-x86_64" in visible(row)
    assert f"{len(archive):,} bytes" in visible(row) or " KiB" in visible(row)
    assert 'aria-label="Download 2.0.0 for linux-x86_64"' in row


def test_the_language_switcher_overrides_the_browser_and_the_customer_setting(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    sign_in(client, keys["spanish"])  # the customer reads Spanish
    assert '<html lang="es">' in client.get("/portal/").get_data(as_text=True)
    token = csrf(client, "/portal/")
    chosen = client.post(
        "/portal/language", data={"csrf_token": token, "language": "en", "next": "/portal/"}
    )
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/portal/"
    page = client.get("/portal/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="en">' in page and "Renew maintenance" in page
    # It outlives signing out, and reaches the sign-in page.
    client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/")})
    login = client.get("/portal/login", headers={"Accept-Language": "es"})
    assert "Sign in to your downloads" in login.get_data(as_text=True)
    client.post(
        "/portal/language",
        data={
            "csrf_token": csrf(client, "/portal/login"),
            "language": "es",
            "next": "/portal/login",
        },
    )
    assert "Acceda a sus descargas" in client.get("/portal/login").get_data(as_text=True)


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"language": "xx", "next": "/portal/"}, 303),  # not one we ship: nothing remembered
        ({"language": "es", "next": "https://evil.example/portal/"}, 303),
        ({"language": "es"}, 400),  # no CSRF token (removed below)
    ],
)
def test_the_language_switcher_refuses_what_it_cannot_keep(
    client: FlaskClient, keys: dict[str, str], form: dict[str, str], status: int
) -> None:
    sign_in(client, keys["active"])
    data = dict(form)
    if status != 400:
        data["csrf_token"] = csrf(client, "/portal/")
    answer = client.post("/portal/language", data=data)
    assert answer.status_code == status
    if status == 303:
        assert answer.headers["Location"] == "/portal/", "never to another site"
    if form["language"] != "es" or status == 400:
        assert "vigor_lang" not in answer.headers.get("Set-Cookie", "")


def _portal_user(services: Services, client: FlaskClient) -> None:
    link = invite(services, "other", "buyer@other.example")
    assert set_password(client, link, PASSWORD).status_code == 303


def _change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> object:
    return client.post(
        "/portal/password",
        data={
            "csrf_token": csrf(client, "/portal/password"),
            "current_password": current,
            "new_password": new,
            "confirm": new if confirm is None else confirm,
        },
    )


def test_a_portal_user_changes_their_password_and_other_sessions_end(
    app: Flask, client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    _portal_user(services, client)
    other = app.test_client()  # the same person on another computer
    assert user_sign_in(other, "buyer@other.example", PASSWORD).status_code == 303
    assert other.get("/portal/", follow_redirects=True).status_code == 200
    page = client.get("/portal/", follow_redirects=True).get_data(as_text=True)
    assert "Signed in as buyer@other.example" in header(page)
    assert 'href="/portal/password"' in page.split("</header>", 1)[0]
    changed = _change(client, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303  # type: ignore[attr-defined]
    done = client.get(changed.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Password changed. Your other sessions are signed out." in visible(done)
    assert client.get("/portal/", follow_redirects=False).status_code == 302  # to its license
    assert "/portal/login" in other.get("/portal/").headers["Location"], "the other one ended"
    fresh = app.test_client()
    assert user_sign_in(fresh, "buyer@other.example", PASSWORD).status_code == 400
    assert user_sign_in(fresh, "buyer@other.example", NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "confirm", "says"),
    [
        ("not my password!", NEW_PASSWORD, None, "This is not your current password."),
        (PASSWORD, "short", None, "The password must have at least 12 characters."),
        (PASSWORD, NEW_PASSWORD, "something else", "The two passwords are not the same."),
        ("", NEW_PASSWORD, None, "Please fill in this field."),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    services: Services,
    world: dict[str, str],
    current: str,
    new: str,
    confirm: str | None,
    says: str,
) -> None:
    _portal_user(services, client)
    refused = _change(client, current, new, confirm)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert says in visible(refused.get_data(as_text=True))  # type: ignore[attr-defined]
    assert client.get("/portal/", follow_redirects=True).status_code == 200, "still signed in"
    assert user_sign_in(app.test_client(), "buyer@other.example", PASSWORD).status_code == 303


def test_a_key_session_has_no_password_page(client: FlaskClient, keys: dict[str, str]) -> None:
    sign_in(client, keys["active"])
    assert "/portal/login" in client.get("/portal/password").headers["Location"]


# --------------------------------------------------------------------------- branding


@pytest.fixture
def branded(settings: Settings) -> Iterator[FlaskClient]:
    brand = settings.with_(
        vendor_name='Acme <Software> & "Sons"',
        vendor_logo_url="https://cdn.acme.example/logo.svg",
        vendor_colour="#0B5A2A",
        support_email="help@acme.example",
        support_url="https://acme.example/support",
    )
    with vigor_app(brand) as application:
        yield application.test_client()


def test_the_vendor_s_brand_is_in_the_title_header_footer_and_colour_escaped(
    branded: FlaskClient,
) -> None:
    response = branded.get("/portal/login")
    page = response.get_data(as_text=True)
    assert (
        "<title>Sign in to your downloads · Acme &lt;Software&gt; &amp; &#34;Sons&#34;</title>"
        in page
    )
    assert "<Software>" not in page, "the name is text, never markup"
    assert 'Acme <Software> & "Sons"' in header(page)
    assert '<img class="logo" src="https://cdn.acme.example/logo.svg" alt="">' in page
    footer = visible(page.split("<footer", 1)[1])
    assert "help@acme.example" in footer and "https://acme.example/support" in footer
    assert (
        "img-src 'self' data: https://cdn.acme.example;"
        in response.headers["Content-Security-Policy"]
    )
    assert 'href="/portal/brand.css"' in page
    css = branded.get("/portal/brand.css")
    assert css.mimetype == "text/css"
    assert css.get_data(as_text=True) == ":root { --brand: #0b5a2a; }\n"
    assert "Vigor" not in visible(page)


def test_no_brand_configured_is_vigor_with_no_extra_stylesheet(client: FlaskClient) -> None:
    page = client.get("/portal/login").get_data(as_text=True)
    assert "· Vigor</title>" in page and "brand.css" not in page
    assert client.get("/portal/brand.css").get_data() == b""


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("VIGOR_VENDOR_COLOR", "#ffd700", "contrast of 1.4:1; at least 4.5:1"),
        ("VIGOR_VENDOR_COLOR", "red; background: url(x)", "must be a hex colour"),
        ("VIGOR_VENDOR_LOGO_URL", "javascript:alert(1)", "must be an http(s) URL or a path"),
        ("VIGOR_VENDOR_LOGO_URL", "https://cdn.example;script-src *", "must be an http(s) URL"),
        ("VIGOR_SUPPORT_URL", "mailto:x@example.com", "must be an http:// or https:// URL"),
        ("VIGOR_SUPPORT_EMAIL", "not an address", "must be an e-mail address"),
        ("VIGOR_VENDOR_NAME", "   ", "must be 1 to 80 characters"),
    ],
)
def test_a_brand_the_portal_cannot_use_is_refused_naming_the_variable(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value).startswith(variable)


def test_contrast_is_wcag_s() -> None:
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast_ratio("#1f5fbf", "#ffffff"), 2) == 6.09
    assert Settings.from_env({"VIGOR_VENDOR_COLOR": "#1F5FBF"}).vendor_colour == "#1F5FBF"


def test_a_portal_user_is_told_why_a_license_is_not_available(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "lapsed", "ana@lapsed.example"), PASSWORD)
    chooser = client.get("/portal/").get_data(as_text=True)
    available = visible(chooser, "choose").split("Not available", 1)
    assert "Acme-Erp" in available[0] and "old site" not in available[0]
    assert "Acme-Erp · old site" in available[1]
    assert "License suspended : This license is suspended" in available[1]
    assert 'href="/portal/licenses/' in chooser
    assert chooser.count('href="/portal/licenses/') == 2, "the suspended one opens nothing"
