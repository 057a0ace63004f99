"""Admin accounts through their life, in the web UI and with ``vigor user``: added with a
set-password link, roles changed, disabled and enabled, reset, removed, and one's own password
changed — the last active admin always stays, and every refusal changes nothing."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server.cli import cli
from server.cli.common import ACTOR
from server.config import Settings
from server.domain import customers, portal_users, users
from server.domain.errors import ConflictError
from server.domain.models import AdminUser, AuditEvent, utcnow
from server.domain.vocabulary import AccountState, Role
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_product

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def people(services: Services) -> dict[str, int]:
    """One admin, a publisher and a viewer; their ids by role."""
    with services.db.sessions() as s:
        return {
            role: users.add_user(s, f"{role}@v.example", PASSWORD, role=role, actor="t").id
            for role in ("admin", "publisher", "viewer")
        }


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, page[:800]
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> int:
    data = {"email": email, "password": password, "csrf_token": csrf(client, "/admin/login")}
    return client.post("/admin/login", data=data).status_code


def signed_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, f"{role}@v.example") == 303
    return client


def post(client: FlaskClient, path: str, **form: str) -> Any:
    # Disable, reset and remove are confirmed (the confirm step's field).
    return client.post(path, data={"csrf_token": csrf(client, "/admin/"), "confirm": "yes", **form})


def row(services: Services, email: str) -> AdminUser:
    with services.db.sessions() as s:
        return users.find_user(s, email)


def everyone(services: Services) -> list[tuple[str, str, bool, str]]:
    """Every user as (email, role, disabled, password hash): what a refusal must leave alone."""
    with services.db.sessions() as s:
        return [
            (u.email, u.role, u.disabled, u.password_hash)
            for u in s.scalars(select(AdminUser).order_by(AdminUser.id))
        ]


def last_audit(services: Services) -> tuple[str, str, str]:
    with services.db.sessions() as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        return event.actor, event.action, event.target


def link_path(page: str) -> str:
    match = re.search(r'<pre id="new-link">http://localhost(/admin/set-password/[^<]+)</pre>', page)
    assert match, page[:2000]
    return match.group(1)


def choose_password(client: FlaskClient, path: str, password: str, confirm: str = "") -> Any:
    data = {"csrf_token": csrf(client, path), "password": password, "confirm": confirm or password}
    return client.post(path, data=data)


# --------------------------------------------------------------------------- the web UI


def test_only_admins_manage_users_and_a_refusal_changes_nothing(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    before = everyone(services)
    for role in ("publisher", "viewer"):
        client = signed_in(app, role)
        assert client.get("/admin/users").status_code == 403
        assert "/admin/users" not in client.get("/admin/").get_data(as_text=True)
        for path, form in [
            ("/admin/users", {"email": "eve@v.example", "role": "admin"}),
            (f"/admin/users/{people[role]}/role", {"role": "admin"}),
            (f"/admin/users/{people['admin']}/disable", {}),
            (f"/admin/users/{people['admin']}/reset", {}),
            (f"/admin/users/{people['admin']}/remove", {}),
        ]:
            assert post(client, path, **form).status_code == 403, path
    assert everyone(services) == before


def test_a_post_without_a_csrf_token_changes_nothing(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    client = signed_in(app, "admin")
    before = everyone(services)
    for path in (
        f"/admin/users/{people['viewer']}/disable",
        f"/admin/users/{people['viewer']}/role",
    ):
        assert client.post(path, data={"role": "admin"}).status_code == 400
    assert client.post("/admin/account", data={"current_password": PASSWORD}).status_code == 400
    assert everyone(services) == before


def test_an_admin_adds_a_user_who_chooses_a_password_through_the_link_once(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin = signed_in(app, "admin")
    page = post(admin, "/admin/users", email=" Pat@V.example ", role="publisher")
    assert page.status_code == 200
    path = link_path(page.get_data(as_text=True))
    pat = row(services, "pat@v.example")
    assert (pat.role, pat.state) == (Role.PUBLISHER, AccountState.INVITED)
    assert last_audit(services) == ("admin@v.example", "user.add", "pat@v.example")
    assert sign_in(app.test_client(), "pat@v.example", "") == 400, "no password yet"
    assert "invited, no password yet" in admin.get("/admin/users").get_data(as_text=True)

    newcomer = app.test_client()
    assert newcomer.get(path).status_code == 200
    short = choose_password(newcomer, path, "short")
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    differ = choose_password(newcomer, path, NEW_PASSWORD, "something else entirely")
    assert differ.status_code == 400 and "not the same" in differ.get_data(as_text=True)
    assert row(services, "pat@v.example").state == AccountState.INVITED, "refusals kept nothing"
    done = choose_password(newcomer, path, NEW_PASSWORD)
    assert done.status_code == 303
    assert newcomer.get("/admin/releases/new").status_code == 200, "signed in, as a publisher"
    assert last_audit(services) == ("pat@v.example", "user.password_set", "pat@v.example")

    used = app.test_client().get(path)
    assert used.status_code == 400 and "used already" in used.get_data(as_text=True)
    assert sign_in(app.test_client(), "pat@v.example", NEW_PASSWORD) == 303


def test_adding_a_user_twice_or_with_a_bad_role_is_a_form_error(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin = signed_in(app, "admin")
    before = everyone(services)
    twice = post(admin, "/admin/users", email="VIEWER@v.example", role="viewer")
    assert twice.status_code == 409 and "already exists" in twice.get_data(as_text=True)
    bad = post(admin, "/admin/users", email="new@v.example", role="owner")
    assert bad.status_code == 400 and "must be one of admin" in bad.get_data(as_text=True)
    assert 'value="new@v.example"' in bad.get_data(as_text=True), "the input is kept"
    assert post(admin, "/admin/users", email="nope", role="viewer").status_code == 400
    assert everyone(services) == before


def test_a_portal_set_password_link_does_not_open_an_admin_account(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    make_product(services)
    make_customer(services, "initech")
    with services.db.sessions() as s:
        invitation = portal_users.invite(
            s,
            customers.get_customer(s, "initech"),
            "ana@initech.example",
            secret_key=services.settings.secret_key,
            actor="t",
            now=utcnow(),
        )
    assert invitation.user.id == people["admin"], "same id as the admin: only the salt differs"
    client = app.test_client()
    assert client.get(f"/admin/set-password/{invitation.token}").status_code == 400
    assert client.get("/admin/set-password/not-a-token").status_code == 400


def test_role_changes_apply_on_the_next_request_and_are_audited(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin, viewer = signed_in(app, "admin"), signed_in(app, "viewer")
    assert viewer.get("/admin/releases/new").status_code == 403
    response = post(admin, f"/admin/users/{people['viewer']}/role", role="publisher")
    assert response.status_code == 303
    assert viewer.get("/admin/releases/new").status_code == 200, "the same session, more power"
    assert row(services, "viewer@v.example").role == Role.PUBLISHER
    actor, action, target = last_audit(services)
    assert (actor, action, target) == ("admin@v.example", "user.role", "viewer@v.example")
    assert post(admin, f"/admin/users/{people['viewer']}/role", role="root").status_code == 400
    assert row(services, "viewer@v.example").role == Role.PUBLISHER


def test_the_last_active_admin_cannot_be_disabled_demoted_or_removed(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin = signed_in(app, "admin")
    me = people["admin"]
    # An invited admin cannot sign in yet, so does not count as one.
    assert post(admin, "/admin/users", email="new@v.example", role="admin").status_code == 200
    before = everyone(services)
    for path, form in [
        (f"/admin/users/{me}/disable", {}),
        (f"/admin/users/{me}/role", {"role": "viewer"}),
        (f"/admin/users/{me}/remove", {}),
        (f"/admin/users/{me}/reset", {}),
    ]:
        refused = post(admin, path, **form)
        assert refused.status_code == 409, path
        assert "admin@v.example is the last active admin" in refused.get_data(as_text=True)
    assert everyone(services) == before, "the last admin stays an admin"
    assert admin.get("/admin/users").status_code == 200, "and stays signed in"

    invited = row(services, "new@v.example").id
    assert post(admin, f"/admin/users/{invited}/remove").status_code == 303
    # A second admin, then one of them may go; a disabled admin does not count as one.
    assert post(admin, f"/admin/users/{people['publisher']}/role", role="admin").status_code == 303
    assert post(admin, f"/admin/users/{people['publisher']}/disable").status_code == 303
    assert post(admin, f"/admin/users/{me}/role", role="viewer").status_code == 409
    assert post(admin, f"/admin/users/{people['publisher']}/enable").status_code == 303
    demoted = post(admin, f"/admin/users/{me}/role", role="viewer")
    assert demoted.status_code == 303 and demoted.headers["Location"] == "/admin/"
    assert admin.get("/admin/users").status_code == 403, "no longer an admin"
    # And the domain refuses the same to any caller.
    with services.db.sessions() as s, pytest.raises(ConflictError, match="last active admin"):
        users.remove_user(s, users.get_user(s, people["publisher"]), actor="t")
    assert row(services, "publisher@v.example").role == Role.ADMIN


def test_a_disabled_user_is_signed_out_at_once_refused_and_enabled_again(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin, viewer = signed_in(app, "admin"), signed_in(app, "viewer")
    assert post(admin, f"/admin/users/{people['viewer']}/disable").status_code == 303
    assert viewer.get("/admin/").status_code == 302
    assert sign_in(app.test_client(), "viewer@v.example") == 400
    assert row(services, "viewer@v.example").state == AccountState.DISABLED
    assert last_audit(services) == ("admin@v.example", "user.disable", "viewer@v.example")
    refused = post(admin, f"/admin/users/{people['viewer']}/reset")
    assert refused.status_code == 409 and "enable them first" in refused.get_data(as_text=True)
    assert post(admin, f"/admin/users/{people['viewer']}/enable").status_code == 303
    assert sign_in(app.test_client(), "viewer@v.example") == 303, "with the password they had"


def test_a_reset_clears_the_password_and_shows_a_new_link(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin, viewer = signed_in(app, "admin"), signed_in(app, "viewer")
    page = post(admin, f"/admin/users/{people['viewer']}/reset")
    assert page.status_code == 200
    path = link_path(page.get_data(as_text=True))
    assert last_audit(services) == ("admin@v.example", "user.reset", "viewer@v.example")
    assert viewer.get("/admin/").status_code == 302, "their sessions ended"
    assert sign_in(app.test_client(), "viewer@v.example") == 400, "the old password is gone"
    assert choose_password(app.test_client(), path, NEW_PASSWORD).status_code == 303
    assert sign_in(app.test_client(), "viewer@v.example", NEW_PASSWORD) == 303


def test_a_removed_user_is_gone_and_signed_out(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    admin, viewer = signed_in(app, "admin"), signed_in(app, "viewer")
    assert post(admin, f"/admin/users/{people['viewer']}/remove").status_code == 303
    assert viewer.get("/admin/").status_code == 302
    assert sign_in(app.test_client(), "viewer@v.example") == 400
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert "viewer@v.example is removed." in listing
    assert '<td data-label="Email">viewer@v.example' not in listing
    assert last_audit(services) == ("admin@v.example", "user.remove", "viewer@v.example")
    for path in (f"/admin/users/{people['viewer']}/disable", "/admin/users/999/role"):
        assert post(admin, path, role="viewer").status_code == 404
    assert post(admin, f"/admin/users/{people['admin']}/promote").status_code == 404


def test_changing_one_s_own_password(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    viewer = signed_in(app, "viewer")
    elsewhere = signed_in(app, "viewer")
    assert viewer.get("/admin/account").status_code == 200

    def change(current: str, new: str, confirm: str | None = None) -> Any:
        form = {"current_password": current, "new_password": new, "confirm": confirm or new}
        return viewer.post(
            "/admin/account", data={"csrf_token": csrf(viewer, "/admin/account")} | form
        )

    before = everyone(services)
    wrong = change("not my password", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert "is not your current password" in wrong.get_data(as_text=True)
    assert change(PASSWORD, "short").status_code == 400
    assert change(PASSWORD, NEW_PASSWORD, "something else").status_code == 400
    assert everyone(services) == before, "refusals change nothing"
    assert elsewhere.get("/admin/").status_code == 200

    assert change(PASSWORD, NEW_PASSWORD).status_code == 303
    assert viewer.get("/admin/").status_code == 200, "this session goes on"
    assert elsewhere.get("/admin/").status_code == 302, "the other sessions end"
    assert sign_in(app.test_client(), "viewer@v.example") == 400
    assert sign_in(app.test_client(), "viewer@v.example", NEW_PASSWORD) == 303
    assert last_audit(services)[1:] == ("user.login", "viewer@v.example")
    with services.db.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert "user.password_change" in actions


# --------------------------------------------------------------------------- vigor user


def run(app: Flask, *args: str, **env: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(cli, args=list(args), env=env)
    return result.exit_code, result.output


def test_the_cli_manages_users_and_refuses_in_one_line(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    code, listing = run(app, "user", "list")
    assert code == 0
    assert re.search(r"viewer@v\.example\s+viewer\s+active", listing)

    assert run(app, "user", "role", "viewer@v.example", "publisher") == (
        0,
        "user viewer@v.example is publisher\n",
    )
    assert run(app, "user", "disable", "publisher@v.example")[0] == 0
    assert row(services, "publisher@v.example").disabled
    assert run(app, "user", "enable", "publisher@v.example")[0] == 0

    viewer = signed_in(app, "viewer")
    code, output = run(
        app, "user", "password", "viewer@v.example", "--password-env", "PW", PW=NEW_PASSWORD
    )
    assert code == 0 and "signed out" in output
    assert viewer.get("/admin/").status_code == 302
    assert sign_in(app.test_client(), "viewer@v.example", NEW_PASSWORD) == 303

    code, output = run(app, "user", "reset", "publisher@v.example")
    assert code == 0
    path = output.splitlines()[0].removeprefix("http://localhost")
    assert path.startswith("/admin/set-password/")
    assert choose_password(app.test_client(), path, NEW_PASSWORD).status_code == 303

    assert run(app, "user", "remove", "publisher@v.example")[0] == 0
    assert "publisher@v.example" not in run(app, "user", "list")[1]
    with services.db.sessions() as s:
        actions = [
            (event.actor, event.action, event.target)
            for event in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if event.action != "user.login"
        ]
    operator = ACTOR
    assert actions[-7:] == [
        (operator, "user.role", "viewer@v.example"),
        (operator, "user.disable", "publisher@v.example"),
        (operator, "user.enable", "publisher@v.example"),
        (operator, "user.password_set", "viewer@v.example"),
        (operator, "user.reset", "publisher@v.example"),
        ("publisher@v.example", "user.password_set", "publisher@v.example"),
        (operator, "user.remove", "publisher@v.example"),
    ]


CLI_REFUSALS = [
    (("disable", "admin@v.example"), "admin@v.example is the last active admin"),
    (("role", "admin@v.example", "viewer"), "admin@v.example is the last active admin"),
    (("remove", "admin@v.example"), "admin@v.example is the last active admin"),
    (("reset", "admin@v.example"), "admin@v.example is the last active admin"),
    (("disable", "nobody@v.example"), "no user 'nobody@v.example'"),
    (("role", "viewer@v.example", "root"), "role: must be one of admin, publisher, viewer"),
    (("password", "viewer@v.example", "--password-env", "PW"), "at least 10 characters"),
    (("password", "viewer@v.example", "--password-env", "UNSET"), "UNSET is empty"),
]


def test_cli_refusals_are_one_line_a_non_zero_exit_and_change_nothing(
    app: Flask, services: Services, people: dict[str, int]
) -> None:
    before = everyone(services)
    for args, message in CLI_REFUSALS:
        code, output = run(app, "user", *args, PW="short")
        assert code != 0, args
        assert message in output, (args, output)
        assert len(output.strip().splitlines()) == 1, output
        assert everyone(services) == before, args


def test_two_admins_demoting_each_other_at_the_same_moment_leave_one_admin(
    services: Services, people: dict[str, int]
) -> None:
    with services.db.sessions() as s:
        users.set_role(s, users.get_user(s, people["publisher"]), "admin", actor="t")
    both_read = threading.Barrier(2)

    def demote(user_id: int) -> str:
        with services.db.sessions() as s:
            user = users.get_user(s, user_id)
            both_read.wait(timeout=10)  # each has seen two active admins
            try:
                users.set_role(s, user, "viewer", actor="t")
            except ConflictError:
                return "refused"
            return "demoted"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(demote, [people["admin"], people["publisher"]]))
    assert outcomes == ["demoted", "refused"]
    roles = [role for _, role, disabled, _ in everyone(services) if not disabled]
    assert roles.count(Role.ADMIN) == 1


def test_guessing_the_current_password_on_the_account_page_is_throttled(
    settings: Settings, people: dict[str, int]
) -> None:
    with vigor_app(settings.with_(rate_limit_login="3/minute")) as app:
        viewer = signed_in(app, "viewer")
        form = {"current_password": "guess", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        statuses = [
            viewer.post(
                "/admin/account", data={"csrf_token": csrf(viewer, "/admin/account")} | form
            ).status_code
            for _ in range(4)
        ]
    assert statuses == [400, 400, 400, 429]
