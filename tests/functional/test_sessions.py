"""Every kind of session ends server-side: a copied cookie is dead after logout, a new password
or disable — admin users, portal users and portal license-key sessions alike — and signing in
starts a fresh session whose CSRF secret no one held before."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.domain import customers, portal_sessions, portal_users, users
from server.domain.models import ApiToken, PortalKeySession, utcnow
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product

PASSWORD = "correct horse battery"
PORTAL_PASSWORD = "a long enough passphrase"
TODAY = utcnow().date()


@pytest.fixture
def world(services: Services) -> dict[str, str]:
    """Two admins, a viewer, a customer with a license key and a portal user with a password."""
    make_product(services)
    make_customer(services, "initech", ("maintenance", TODAY - timedelta(days=10), TODAY))
    key = make_license(services, "initech")
    with services.db.sessions() as s:
        for email, role in [("root@v.example", "admin"), ("ops@v.example", "admin")]:
            users.add_user(s, email, PASSWORD, role=role, actor="t")
        users.add_user(s, "viewer@v.example", PASSWORD, role="viewer", actor="t")
        invitation = portal_users.invite(
            s,
            customers.get_customer(s, "initech"),
            "ana@initech.example",
            secret_key=services.settings.secret_key,
            actor="t",
            now=utcnow(),
        )
        portal_users.set_password_with_link(
            s, services.settings.secret_key, invitation.token, PORTAL_PASSWORD, now=utcnow()
        )
    return {"key": key}


def csrf(client: FlaskClient, path: str, field: str = "csrf_token") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(rf'name="{field}"[^>]*value="([^"]+)"', page)
    assert match, page[:800]
    return match.group(1)


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of ``client``'s cookies (a stolen cookie)."""
    copied = app.test_client()
    for cookie in client._cookies.values():
        copied.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    return copied


def admin_sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> int:
    token = csrf(client, "/admin/login")
    data = {"email": email, "password": password, "csrf_token": token}
    return client.post("/admin/login", data=data).status_code


def key_sign_in(client: FlaskClient, key: str) -> int:
    token = csrf(client, "/portal/login")
    return client.post("/portal/login", data={"key": key, "csrf_token": token}).status_code


def user_sign_in(client: FlaskClient, email: str, password: str = PORTAL_PASSWORD) -> int:
    token = csrf(client, "/portal/login", "user-csrf_token")
    data = {"user-csrf_token": token, "user-email": email, "user-password": password}
    return client.post("/portal/login", data=data).status_code


def admin_in(client: FlaskClient) -> bool:
    response = client.get("/admin/")
    assert response.status_code in {200, 302}
    return response.status_code == 200


def portal_in(client: FlaskClient) -> bool:
    """Signed in to the portal, either way: the page (a key) or the way to a license (a user)."""
    response = client.get("/portal/")
    return response.status_code == 200 or "/portal/licenses/" in response.headers.get(
        "Location", ""
    )


# --------------------------------------------------------------------------- admin users


def _admin_logout(app: Flask, client: FlaskClient, services: Services) -> None:
    client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/")})


def _admin_own_password(app: Flask, client: FlaskClient, services: Services) -> None:
    data = {
        "csrf_token": csrf(client, "/admin/account"),
        "current_password": PASSWORD,
        "new_password": "a brand new passphrase",
        "confirm": "a brand new passphrase",
    }
    assert client.post("/admin/account", data=data).status_code == 303
    assert admin_in(client), "the session that changed the password goes on"


def _admin_disabled(app: Flask, client: FlaskClient, services: Services) -> None:
    other = app.test_client()
    admin_sign_in(other, "ops@v.example")
    with services.db.sessions() as s:
        user_id = users.find_user(s, "root@v.example").id
    path = f"/admin/users/{user_id}/disable"
    form = {"csrf_token": csrf(other, "/admin/users"), "confirm": "yes"}
    assert other.post(path, data=form).status_code == 303


def _admin_reset(app: Flask, client: FlaskClient, services: Services) -> None:
    with services.db.sessions() as s:
        users.reset_password(
            s,
            users.find_user(s, "root@v.example"),
            secret_key=services.settings.secret_key,
            actor="t",
            now=utcnow(),
        )


@pytest.mark.parametrize(
    "end",
    [_admin_logout, _admin_own_password, _admin_disabled, _admin_reset],
    ids=["logout", "own-password-change", "disabled-by-an-admin", "password-reset"],
)
def test_a_copied_admin_cookie_is_dead_after(
    app: Flask,
    client: FlaskClient,
    services: Services,
    world: dict[str, str],
    end: Callable[[Flask, FlaskClient, Services], None],
) -> None:
    assert admin_sign_in(client, "root@v.example") == 303
    copied = copy_of(app, client)
    assert admin_in(copied), "the copy works while the session is open"
    end(app, client, services)
    assert not admin_in(copied), "a copy of the old cookie no longer works"
    assert copied.get("/admin/tokens").status_code == 302


# --------------------------------------------------------------------------- portal users


def _user_logout(app: Flask, client: FlaskClient, services: Services) -> None:
    client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/login")})


def _user_disabled(app: Flask, client: FlaskClient, services: Services) -> None:
    with services.db.sessions() as s:
        user = portal_users.find_user(s, "ana@initech.example")
        portal_users.set_disabled(s, user, True, actor="t")


def _user_reset(app: Flask, client: FlaskClient, services: Services) -> None:
    with services.db.sessions() as s:
        user = portal_users.find_user(s, "ana@initech.example")
        portal_users.reset(
            s, user, secret_key=services.settings.secret_key, actor="t", now=utcnow()
        )


@pytest.mark.parametrize(
    "end",
    [_user_logout, _user_disabled, _user_reset],
    ids=["logout", "disabled", "password-reset"],
)
def test_a_copied_portal_user_cookie_is_dead_after(
    app: Flask,
    client: FlaskClient,
    services: Services,
    world: dict[str, str],
    end: Callable[[Flask, FlaskClient, Services], None],
) -> None:
    assert user_sign_in(client, "ana@initech.example") == 303
    copied = copy_of(app, client)
    assert portal_in(copied)
    end(app, client, services)
    assert not portal_in(copied)


# --------------------------------------------------------------------------- license-key sessions


def test_a_copied_license_key_cookie_is_dead_after_logout(
    app: Flask, client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    assert key_sign_in(client, world["key"]) == 303
    copied = copy_of(app, client)
    assert portal_in(copied), "the copy works while the session is open"
    assert client.get("/portal/bundle").status_code != 302

    logout = client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/")})
    assert logout.status_code == 303

    assert not portal_in(client)
    assert not portal_in(copied), "a copy of the old cookie no longer works"
    assert copied.get("/portal/bundle").headers["Location"].endswith("/portal/login")
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(PortalKeySession)) == 0


def test_signing_out_one_key_session_leaves_the_other_people_on_that_key_signed_in(
    app: Flask, client: FlaskClient, world: dict[str, str]
) -> None:
    """Why a table and not a per-license version: one key serves a whole customer."""
    colleague = app.test_client()
    assert key_sign_in(client, world["key"]) == 303
    assert key_sign_in(colleague, world["key"]) == 303
    client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/")})
    assert not portal_in(client)
    assert portal_in(colleague)


def test_a_key_session_ends_when_the_license_is_suspended_or_the_session_expires(
    app: Flask, client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    assert key_sign_in(client, world["key"]) == 303
    with services.db.sessions() as s:
        row = s.scalars(select(PortalKeySession)).one()
        lifetime = row.expires_at - row.created_at
        assert lifetime == app.permanent_session_lifetime, "the cookie's lifetime, not more"
        token_hash = row.token_hash
    session_cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert session_cookie is not None
    assert token_hash not in session_cookie.value, "the cookie holds the token, the row its hash"

    with services.db.sessions() as s:
        lic = customers.find_license(s, world["key"])
        customers.set_license_status(s, lic, "suspended", actor="t")
    assert not portal_in(client)
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, world["key"]), "active", actor="t"
        )
    assert portal_in(client), "the session itself was not closed: reactivating reopens it"

    with services.db.sessions() as s:
        row = s.scalars(select(PortalKeySession)).one()
        assert portal_sessions.session_license(s, "x" * 43, now=utcnow()) is None
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    assert not portal_in(client), "an expired session is refused even with a live cookie"
    assert key_sign_in(app.test_client(), world["key"]) == 303
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(PortalKeySession)) == 1, (
            "the expired row was cleared when the next session opened"
        )


def test_a_key_session_token_that_is_not_one_opens_nothing(
    services: Services, world: dict[str, str]
) -> None:
    with services.db.sessions() as s:
        for token in [None, 7, "", "a" * 43, ["list"], "é" * 43, "a" * 10_000]:
            assert portal_sessions.session_license(s, token, now=utcnow()) is None, token
            portal_sessions.close_session(s, token)  # and closing it is harmless


# --------------------------------------------------------------------------- CSRF and fixation


def _plant(client: FlaskClient, login_path: str, field: str = "csrf_token") -> str:
    """What an attacker fixes in a victim's browser before sign-in: a session with a marker and
    a CSRF secret whose token the attacker knows."""
    token = csrf(client, login_path, field)
    with client.session_transaction() as held:
        held["planted"] = "by someone else"
    return token


def test_admin_sign_in_rotates_the_session_and_the_csrf_secret(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    fixed = _plant(client, "/admin/login")
    with client.session_transaction() as held:
        secret_before = held["csrf_token"]
    assert admin_sign_in(client, "root@v.example") == 303
    with client.session_transaction() as held:
        assert "planted" not in held, "nothing from before sign-in survives it"
        assert held.get("csrf_token") != secret_before

    refused = client.post(
        "/admin/tokens", data={"csrf_token": fixed, "name": "ci", "role": "admin"}
    )
    assert refused.status_code == 400, "a token fixed before sign-in is dead after it"
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0
    fresh = csrf(client, "/admin/tokens")
    ok = client.post("/admin/tokens", data={"csrf_token": fresh, "name": "ci", "role": "admin"})
    assert ok.status_code == 200


@pytest.mark.parametrize("way", ["key", "user"])
def test_portal_sign_in_rotates_the_session_and_the_csrf_secret(
    client: FlaskClient, world: dict[str, str], way: str
) -> None:
    fixed = _plant(client, "/portal/login")
    if way == "key":
        assert key_sign_in(client, world["key"]) == 303
    else:
        assert user_sign_in(client, "ana@initech.example") == 303
    with client.session_transaction() as held:
        assert "planted" not in held
    assert portal_in(client)
    refused = client.post("/portal/logout", data={"csrf_token": fixed})
    assert refused.status_code == 400, "a token fixed before sign-in is dead after it"
    assert portal_in(client), "and the refused sign-out changed nothing"
