"""Portal users: invited by an admin, they set a password once and see their customer's licenses."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.config import Settings
from server.domain import customers, portal_users, users
from server.domain.errors import (
    ConflictError,
    InvalidInputError,
    InvitationExpiredError,
    InvitationInvalidError,
    NotFoundError,
    SignInRefusedError,
)
from server.domain.models import AuditEvent, CustomerUser, utcnow
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release

PASSWORD = "a long enough passphrase"
ADMIN_PASSWORD = "correct horse battery"
TODAY = datetime.now(UTC).date()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.fixture
def world(services: Services, tmp_path: Path) -> dict[str, str]:
    """Two customers: ``lapsed`` (two products' licenses, one suspended) and ``other``."""
    make_product(services)
    make_product(services, "acme-crm")
    now = datetime.now(UTC)
    make_release(services, tmp_path, "1.0.0", published_at=now - timedelta(days=300))
    make_release(services, tmp_path, "2.0.0", kind="version", published_at=now - timedelta(days=5))
    make_customer(services, "lapsed", ("maintenance", days(-400), days(-60)), product=None)
    make_customer(services, "other", ("maintenance", days(-100), days(200)), product=None)
    keys = {
        "lapsed": make_license(services, "lapsed"),
        "lapsed-crm": make_license(services, "lapsed", "acme-crm", label="head office"),
        "lapsed-suspended": make_license(services, "lapsed", label="old site"),
        "other": make_license(services, "other"),
    }
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, keys["lapsed-suspended"]), "suspended", actor="t"
        )
        for role in ("admin", "publisher", "viewer"):
            users.add_user(s, f"{role}@example.com", ADMIN_PASSWORD, role=role, actor="t")
    return keys


def invite(services: Services, customer: str, email: str, now: datetime | None = None) -> str:
    """A set-password link's path, as an admin would hand it out."""
    with services.db.sessions() as s:
        invitation = portal_users.invite(
            s,
            customers.get_customer(s, customer),
            email,
            secret_key=services.settings.secret_key,
            actor="t",
            now=now or utcnow(),
        )
    return f"/portal/set-password/{invitation.token}"


def csrf(client: FlaskClient, path: str, field: str = "csrf_token") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(rf'<input[^>]*name="{field}"[^>]*value="([^"]+)"', page)
    assert match, page[:800]
    return match.group(1)


def set_password(client: FlaskClient, link: str, password: str, confirm: str | None = None) -> Any:
    return client.post(
        link,
        data={
            "csrf_token": csrf(client, link),
            "password": password,
            "confirm": password if confirm is None else confirm,
        },
    )


def sign_in(client: FlaskClient, email: str, password: str, **headers: str) -> Any:
    token = csrf(client, "/portal/login", "user-csrf_token")
    return client.post(
        "/portal/login",
        data={"user-csrf_token": token, "user-email": email, "user-password": password},
        headers=headers,
    )


def admin_sign_in(client: FlaskClient, role: str) -> None:
    token = csrf(client, "/admin/login")
    client.post(
        "/admin/login",
        data={"email": f"{role}@example.com", "password": ADMIN_PASSWORD, "csrf_token": token},
    )


def user_row(services: Services, email: str) -> CustomerUser:
    with services.db.sessions() as s:
        return portal_users.find_user(s, email)


# --------------------------------------------------------------------------- the domain


def test_invitation_stores_the_email_lowercased_without_a_password_and_is_audited(
    services: Services, world: dict[str, str]
) -> None:
    invite(services, "lapsed", "  Ana@Lapsed.Example ")
    user = user_row(services, "ANA@lapsed.example")
    assert user.email == "ana@lapsed.example"
    assert user.password_hash is None and not user.disabled and user.last_login_at is None
    with services.db.sessions() as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        assert (event.action, event.target) == ("portal_user.add", "lapsed/ana@lapsed.example")
        with pytest.raises(ConflictError, match="already exists"):
            portal_users.invite(
                s,
                customers.get_customer(s, "other"),
                "ANA@lapsed.example",
                secret_key="k",
                actor="t",
                now=utcnow(),
            )
        with pytest.raises(InvalidInputError, match="is not an email address"):
            portal_users.invite(
                s,
                customers.get_customer(s, "other"),
                "not an email",
                secret_key="k",
                actor="t",
                now=utcnow(),
            )
        assert s.scalar(select(func.count()).select_from(CustomerUser)) == 1


def test_a_link_works_once_for_seven_days(services: Services, world: dict[str, str]) -> None:
    issued = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    token = invite(services, "lapsed", "ana@lapsed.example", now=issued).rsplit("/", 1)[1]
    key = services.settings.secret_key
    with services.db.sessions() as s:
        almost = issued + timedelta(days=7, seconds=-1)
        assert portal_users.read_invitation(s, key, token, almost).email == "ana@lapsed.example"
        with pytest.raises(InvitationExpiredError):
            portal_users.read_invitation(s, key, token, issued + timedelta(days=7))
        with pytest.raises(InvitationInvalidError):
            portal_users.read_invitation(s, key, token[:-2] + "xx", issued)
        with pytest.raises(InvitationInvalidError):
            portal_users.read_invitation(s, "another server's key", token, issued)
        with pytest.raises(InvalidInputError, match="at least 12 characters"):
            portal_users.set_password_with_link(s, key, token, "short", now=issued)
        assert portal_users.read_invitation(s, key, token, issued), "a refusal changes nothing"
        portal_users.set_password_with_link(s, key, token, PASSWORD, now=issued)
        with pytest.raises(InvitationInvalidError, match="used already"):
            portal_users.read_invitation(s, key, token, issued)


def test_sign_in_refusals_all_say_the_same(services: Services, world: dict[str, str]) -> None:
    link = invite(services, "lapsed", "ana@lapsed.example")
    invite(services, "lapsed", "bo@lapsed.example")  # never set a password
    with services.db.sessions() as s:
        portal_users.set_password_with_link(
            s, services.settings.secret_key, link.rsplit("/", 1)[1], PASSWORD, now=utcnow()
        )
        assert portal_users.authenticate(s, "ANA@lapsed.example", PASSWORD, now=utcnow())
        refusals = []
        for email, password in [
            ("ana@lapsed.example", "wrong password!"),
            ("nobody@lapsed.example", PASSWORD),
            ("bo@lapsed.example", ""),
            ("not an email", PASSWORD),
        ]:
            with pytest.raises(SignInRefusedError) as refused:
                portal_users.authenticate(s, email, password, now=utcnow())
            refusals.append(refused.value.message)
        portal_users.set_disabled(
            s, portal_users.find_user(s, "ana@lapsed.example"), True, actor="t"
        )
        with pytest.raises(SignInRefusedError) as refused:
            portal_users.authenticate(s, "ana@lapsed.example", PASSWORD, now=utcnow())
        refusals.append(refused.value.message)
    assert set(refusals) == {"wrong email or password"}


def test_reset_clears_the_password_and_voids_earlier_links(
    services: Services, world: dict[str, str]
) -> None:
    key = services.settings.secret_key
    first = invite(services, "lapsed", "ana@lapsed.example").rsplit("/", 1)[1]
    with services.db.sessions() as s:
        user = portal_users.find_user(s, "ana@lapsed.example")
        second = portal_users.reset(s, user, secret_key=key, actor="t", now=utcnow()).token
        with pytest.raises(InvitationInvalidError):
            portal_users.read_invitation(s, key, first, utcnow())
        portal_users.set_password_with_link(s, key, second, PASSWORD, now=utcnow())
        portal_users.reset(s, user, secret_key=key, actor="t", now=utcnow())
        assert user.password_hash is None
        with pytest.raises(SignInRefusedError):
            portal_users.authenticate(s, "ana@lapsed.example", PASSWORD, now=utcnow())
        portal_users.set_disabled(s, user, True, actor="t")
        with pytest.raises(ConflictError, match="enable them first"):
            portal_users.reset(s, user, secret_key=key, actor="t", now=utcnow())
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-4:] == [
        "portal_user.reset",
        "portal_user.password_set",
        "portal_user.reset",
        "portal_user.disable",
    ]


def test_a_portal_user_sees_only_their_customer_s_active_licenses(
    services: Services, world: dict[str, str]
) -> None:
    invite(services, "lapsed", "ana@lapsed.example")
    with services.db.sessions() as s:
        user = portal_users.find_user(s, "ana@lapsed.example")
        seen = [(lic.product.slug, lic.label) for lic in portal_users.portal_licenses(s, user)]
        assert seen == [("acme-crm", "head office"), ("acme-erp", "")]
        for key in ("other", "lapsed-suspended"):
            with pytest.raises(NotFoundError):
                portal_users.portal_license(s, user, customers.find_license(s, world[key]).id)


# --------------------------------------------------------------------------- the web


def test_admin_adds_a_portal_user_whose_link_works_once(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    admin_sign_in(client, "admin")
    token = csrf(client, "/admin/customers/lapsed")
    page = client.post(
        "/admin/customers/lapsed/portal-users",
        data={"csrf_token": token, "email": "Ana@Lapsed.example"},
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    found = re.search(
        r'<pre id="new-link">http://localhost(/portal/set-password/[^<]+)</pre>', html
    )
    assert found, html
    link = found.group(1)
    again = client.get("/admin/customers/lapsed").get_data(as_text=True)
    assert link not in again, "shown once"
    assert "ana@lapsed.example" in again and "invited, no password yet" in again

    person = client.application.test_client()  # the customer's browser, not the admin's
    form = person.get(link)
    assert form.status_code == 200
    assert "For ana@lapsed.example: at least 12 characters." in form.get_data(as_text=True)
    differ = set_password(person, link, PASSWORD, "another long passphrase")
    assert differ.status_code == 400
    assert "The two passwords are not the same." in differ.get_data(as_text=True)
    short = set_password(person, link, "too short")
    assert short.status_code == 400
    assert "The password must have at least 12 characters." in short.get_data(as_text=True)
    assert user_row(services, "ana@lapsed.example").password_hash is None, "nothing changed"

    done = set_password(person, link, PASSWORD)
    assert done.status_code == 303
    chooser = person.get(done.headers["Location"])
    assert chooser.status_code == 200, "signed in: two licenses to choose from"
    listing = chooser.get_data(as_text=True)
    assert "Choose a license" in listing
    assert "Acme-Crm · head office" in listing and "Acme-Erp" in listing
    choices = listing.split('id="unavailable"', 1)[0]
    assert "old site" not in choices, "a suspended license is not offered"
    assert "old site" in listing.split('id="unavailable"', 1)[1], "it is listed as not available"

    used = client.application.test_client().get(link)
    assert used.status_code == 400
    assert "This link is not valid or was used already." in used.get_data(as_text=True)
    assert "active" in client.get("/admin/customers/lapsed").get_data(as_text=True)
    assert "portal_user.password_set" in client.get("/admin/audit").get_data(as_text=True)


def test_an_expired_link_is_refused_and_sets_nothing(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    link = invite(services, "lapsed", "ana@lapsed.example", now=utcnow() - timedelta(days=8))
    page = client.get(link)
    assert page.status_code == 410
    assert (
        "This link has expired. Ask your vendor for a new one, or ask for one on the sign-in page."
        in page.get_data(as_text=True)
    )
    token = csrf(client, "/portal/login")
    refused = client.post(
        link, data={"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD}
    )
    assert refused.status_code == 410
    assert user_row(services, "ana@lapsed.example").password_hash is None
    assert client.get("/portal/").status_code == 302


def test_a_user_with_one_license_goes_straight_to_the_portal_page(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    link = invite(services, "other", "eve@other.example")
    set_password(client, link, PASSWORD)
    home = client.get("/portal/")
    assert home.status_code == 302
    page = client.get(home.headers["Location"]).get_data(as_text=True)
    assert "Other · Acme-Erp" in page
    assert ">2.0.0<" in page and 'class="status ok active"' in page
    assert "All your licenses" not in page, "nothing to choose from"


def test_sign_in_with_email_and_password_shows_the_key_page_for_that_license(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "lapsed", "ana@lapsed.example"), PASSWORD)
    client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/")})
    assert client.get("/portal/").status_code == 302
    ok = sign_in(client, "ANA@lapsed.example", PASSWORD)
    assert ok.status_code == 303
    chooser = client.get("/portal/").get_data(as_text=True)
    erp = re.search(r'href="(/portal/licenses/\d+/)">Acme-Erp<', chooser)
    assert erp
    page = client.get(erp.group(1)).get_data(as_text=True)

    by_key = client.application.test_client()
    token = csrf(by_key, "/portal/login")
    by_key.post("/portal/login", data={"csrf_token": token, "key": world["lapsed"]})
    key_page = by_key.get("/portal/").get_data(as_text=True)

    def visible(html: str) -> str:
        html = re.sub(r'<input[^>]*csrf_token[^>]*>|/portal/download/[^"]+', "", html)
        html = re.sub(r'action="[^"]+"', "", html)
        html = re.sub(r'<p><a href="/portal/">[^<]*</a></p>', "", html)
        html = re.sub(r"<header.*?</header>", "", html, flags=re.S)  # who is signed in differs
        return " ".join(html.split())

    assert 'class="status alert lapsed"' in page
    assert visible(page) == visible(key_page), "exactly the page a key sign-in shows"
    link = re.search(r'class="version">1\.0\.0</th>.*?href="([^"]+)"', page, re.S)
    assert link
    with client.get(link.group(1)) as download:
        assert download.status_code == 200
    assert "All your licenses" in page
    with client.get(f"{erp.group(1)}bundle?platform=linux-x86_64") as bundle:
        assert bundle.status_code == 200
        assert "acme-erp-lapsed-" in bundle.headers["Content-Disposition"]
    assert user_row(services, "ana@lapsed.example").last_login_at is not None


def test_wrong_password_is_a_generic_error_and_changes_nothing(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(
        client.application.test_client(), invite(services, "lapsed", "ana@lapsed.example"), PASSWORD
    )
    before = user_row(services, "ana@lapsed.example")
    pages = [
        sign_in(client, "ana@lapsed.example", "not the password"),
        sign_in(client, "nobody@lapsed.example", "not the password"),
    ]
    texts = [p.get_data(as_text=True) for p in pages]
    assert [p.status_code for p in pages] == [400, 400]
    errors = [re.findall(r'<p class="error"[^>]*>([^<]*)</p>', text) for text in texts]
    assert errors == [["Wrong email or password."]] * 2, "an unknown email reads the same"
    assert 'value="ana@lapsed.example"' in texts[0], "the email typed is kept"
    assert client.get("/portal/").status_code == 302, "not signed in"
    after = user_row(services, "ana@lapsed.example")
    assert (after.password_hash, after.session_version, after.last_login_at) == (
        before.password_hash,
        before.session_version,
        before.last_login_at,
    )


def test_the_sign_in_page_offers_both_ways_in_both_languages(
    client: FlaskClient, world: dict[str, str]
) -> None:
    english = client.get("/portal/login").get_data(as_text=True)
    assert "With a license key" in english and "With your email and password" in english
    assert '<label for="user-email">Email</label>' in english
    assert '<label for="user-password">Password</label>' in english
    assert '<label for="key">License key</label>' in english
    spanish = client.get("/portal/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Con una clave de licencia" in spanish
    assert '<label for="user-password">Contraseña</label>' in spanish
    wrong = sign_in(client, "x@y.example", "nope", **{"Accept-Language": "es"})
    assert "Correo electrónico o contraseña incorrectos." in wrong.get_data(as_text=True)
    token = csrf(client, "/portal/login")
    empty = client.post("/portal/login", data={"csrf_token": token, "key": ""})
    assert empty.status_code == 400
    assert "Please fill in this field." in empty.get_data(as_text=True)


def test_the_set_password_page_speaks_the_customer_s_language(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    with services.db.sessions() as s:
        customers.set_language(s, customers.get_customer(s, "lapsed"), "es", actor="t")
    page = client.get(invite(services, "lapsed", "ana@lapsed.example")).get_data(as_text=True)
    assert "Elija su contraseña" in page and '<html lang="es">' in page


def test_disabling_a_user_ends_their_session_at_once(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "other", "eve@other.example"), PASSWORD)
    home = client.get("/portal/").headers["Location"]
    assert client.get(home).status_code == 200
    admin = client.application.test_client()
    admin_sign_in(admin, "admin")
    user_id = user_row(services, "eve@other.example").id
    token = csrf(admin, "/admin/customers/other")
    disabled = admin.post(
        f"/admin/customers/other/portal-users/{user_id}/disable",
        data={"csrf_token": token, "confirm": "yes"},
    )
    assert disabled.status_code == 303
    assert "Portal user eve@other.example is disabled." in admin.get(
        "/admin/customers/other"
    ).get_data(as_text=True)
    assert client.get(home).status_code == 302, "the open session ended"
    assert sign_in(client, "eve@other.example", PASSWORD).status_code == 400
    enabled = admin.post(
        f"/admin/customers/other/portal-users/{user_id}/enable", data={"csrf_token": token}
    )
    assert enabled.status_code == 303
    assert sign_in(client, "eve@other.example", PASSWORD).status_code == 303


def test_an_admin_reset_ends_the_session_and_hands_out_a_new_link(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "other", "eve@other.example"), PASSWORD)
    admin = client.application.test_client()
    admin_sign_in(admin, "admin")
    user_id = user_row(services, "eve@other.example").id
    token = csrf(admin, "/admin/customers/other")
    page = admin.post(
        f"/admin/customers/other/portal-users/{user_id}/link",
        data={"csrf_token": token, "confirm": "yes"},
    ).get_data(as_text=True)
    link = re.search(r'<pre id="new-link">http://localhost(/portal/set-password/[^<]+)</pre>', page)
    assert link
    assert client.get("/portal/").status_code == 302, "signed out"
    assert sign_in(client, "eve@other.example", PASSWORD).status_code == 400, "old password gone"
    assert set_password(client, link.group(1), "a brand new passphrase").status_code == 303


def test_signing_out_kills_copied_cookies(
    app: Flask, client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "other", "eve@other.example"), PASSWORD)
    copied = app.test_client()
    for cookie in client._cookies.values():
        copied.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    assert copied.get("/portal/").status_code == 302  # to the license page: signed in
    assert "/portal/licenses/" in copied.get("/portal/").headers["Location"]
    client.post("/portal/logout", data={"csrf_token": csrf(client, "/portal/login")})
    assert copied.get("/portal/").headers["Location"].endswith("/portal/login")


def test_posts_without_csrf_token_are_refused(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    link = invite(services, "lapsed", "ana@lapsed.example")
    refused = client.post(link, data={"password": PASSWORD, "confirm": PASSWORD})
    assert refused.status_code == 400
    assert user_row(services, "ana@lapsed.example").password_hash is None
    assert client.get(link).status_code == 200, "the link still works"
    set_password(client.application.test_client(), link, PASSWORD)
    login = client.post(
        "/portal/login", data={"user-email": "ana@lapsed.example", "user-password": PASSWORD}
    )
    assert login.status_code == 400
    assert client.get("/portal/").status_code == 302, "not signed in"
    admin_sign_in(client, "admin")
    added = client.post("/admin/customers/lapsed/portal-users", data={"email": "x@lapsed.example"})
    assert added.status_code == 400
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerUser)) == 1


@pytest.mark.parametrize("role", ["publisher", "viewer"])
def test_only_admins_manage_portal_users(
    client: FlaskClient, services: Services, world: dict[str, str], role: str
) -> None:
    invite(services, "lapsed", "ana@lapsed.example")
    user_id = user_row(services, "ana@lapsed.example").id
    admin_sign_in(client, role)
    page = client.get("/admin/customers/lapsed").get_data(as_text=True)
    assert "ana@lapsed.example" in page and "Add a portal user" not in page
    token = csrf(client, "/admin/customers/lapsed")
    added = client.post(
        "/admin/customers/lapsed/portal-users", data={"csrf_token": token, "email": "x@y.example"}
    )
    assert added.status_code == 403
    for action in ("disable", "link"):
        response = client.post(
            f"/admin/customers/lapsed/portal-users/{user_id}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 403
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerUser)) == 1
    assert not user_row(services, "ana@lapsed.example").disabled


def test_a_refused_add_keeps_the_email_typed(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    invite(services, "other", "eve@other.example")
    admin_sign_in(client, "admin")
    token = csrf(client, "/admin/customers/lapsed")
    for email, says in [("EVE@other.example", "already exists"), ("no-at-sign", "not an email")]:
        page = client.post(
            "/admin/customers/lapsed/portal-users", data={"csrf_token": token, "email": email}
        )
        assert page.status_code == 400
        html = page.get_data(as_text=True)
        assert says in html and f'value="{email}"' in html
        assert 'id="new-link"' not in html


def test_a_user_cannot_reach_another_customer_s_license(
    client: FlaskClient, services: Services, world: dict[str, str]
) -> None:
    set_password(client, invite(services, "lapsed", "ana@lapsed.example"), PASSWORD)
    with services.db.sessions() as s:
        others = customers.find_license(s, world["other"]).id
        suspended = customers.find_license(s, world["lapsed-suspended"]).id
    for license_id in (others, suspended, 999_999):
        page = client.get(f"/portal/licenses/{license_id}/")
        assert page.status_code == 404
        with client.get(f"/portal/licenses/{license_id}/bundle?platform=linux-x86_64") as bundle:
            assert bundle.status_code == 404
            assert "Content-Disposition" not in bundle.headers
            assert b"bundle.json" not in bundle.get_data()
    stranger = client.application.test_client()
    assert stranger.get(f"/portal/licenses/{others}/").status_code == 302, "signed out: sign in"
    by_key = client.application.test_client()
    by_key.post(
        "/portal/login",
        data={"csrf_token": csrf(by_key, "/portal/login"), "key": world["lapsed"]},
    )
    assert by_key.get(f"/portal/licenses/{others}/").status_code == 302, "a key opens one license"


def test_portal_sign_in_is_throttled(settings: Settings, world: dict[str, str]) -> None:
    with vigor_app(settings.with_(rate_limit_login="3/minute")) as app:
        client = app.test_client()
        statuses = [sign_in(client, "ana@lapsed.example", "guess").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_a_set_password_link_is_throttled_from_any_address(
    settings: Settings, world: dict[str, str]
) -> None:
    """Attempts on one link are counted per link as well as per address: a link handed around
    cannot be tried from many addresses without end; once its window is full, even a good
    password waits, and nothing was set."""
    with vigor_app(settings.with_(rate_limit_login_account="2/minute")) as app:
        services: Services = app.extensions["vigor"]
        link = invite(services, "lapsed", "ana@lapsed.example")
        answers = []
        for n in range(3):
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
            answers.append(set_password(client, link, PASSWORD, confirm="not the same"))
        assert [a.status_code for a in answers] == [400, 400, 429]
        late = app.test_client()
        late.environ_base["REMOTE_ADDR"] = "192.0.2.99"
        assert set_password(late, link, PASSWORD).status_code == 429
        assert user_row(services, "ana@lapsed.example").password_hash is None, "nothing set"
        other = app.test_client()  # another link is not held back by this one's count
        other.environ_base["REMOTE_ADDR"] = "192.0.2.99"
        other_link = invite(services, "lapsed", "bo@lapsed.example")
        assert set_password(other, other_link, PASSWORD).status_code == 303


def test_the_demo_portal_user_signs_in_with_the_printed_password(
    client: FlaskClient, services: Services
) -> None:
    from server.demo import PORTAL_EMAIL, PORTAL_PASSWORD, load_demo

    report = load_demo(services)
    assert f"({PORTAL_EMAIL} / {PORTAL_PASSWORD}," in report.describe("http://x")
    assert sign_in(client, PORTAL_EMAIL, PORTAL_PASSWORD).status_code == 303
    page = client.get(client.get("/portal/").headers["Location"]).get_data(as_text=True)
    assert "Hooli · Acme ERP" in page
    assert 'class="status alert lapsed"' in page and "Renovar el mantenimiento" in page
