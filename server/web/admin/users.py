"""Admin users: everyone changes their own password (``/admin/account``); admins add people (a
set-password link shown once), change roles, disable, enable, reset and remove them
(``/admin/users``). The rules — the last active admin stays, sessions end — live in
:mod:`server.domain.users`."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import users
from server.domain.errors import DomainError
from server.domain.models import utcnow
from server.domain.vocabulary import Role, values
from server.web import db_session, services
from server.web.admin import consequences
from server.web.admin.blueprint import blueprint
from server.web.auth import requires, sign_in
from server.web.confirm import confirmation_page, confirmed
from server.web.errors import status_for
from server.web.ratelimit import Per, rate_limited

USER_ACTIONS = ("disable", "enable", "reset", "remove")


@blueprint.get("/users")
@requires(Role.ADMIN)
def users_page() -> ResponseReturnValue:
    return _users()


def _users(
    *,
    new_link: users.Invitation | None = None,
    error: str | None = None,
    values_: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "admin/users.html",
        users=users.list_users(db_session()),
        roles=values(Role),
        new_link=new_link,
        link=users.set_password_link(services().settings.public_base_url, new_link.token)
        if new_link
        else None,
        error=error,
        values=values_ or {"role": Role.VIEWER},
        consequences=consequences,
    ), status


@blueprint.post("/users")
@requires(Role.ADMIN)
def add_user() -> ResponseReturnValue:
    form = {"email": request.form.get("email", ""), "role": request.form.get("role", "")}
    try:
        invitation = users.invite_user(
            db_session(),
            form["email"],
            role=form["role"],
            secret_key=services().settings.secret_key,
            actor=current_user.email,
            now=utcnow(),
        )
    except DomainError as exc:
        return _users(error=exc.message, values_=form, status=status_for(exc))
    # Rendered, not redirected: the link is shown this once and never stored.
    return _users(new_link=invitation)


@blueprint.post("/users/<id:user_id>/role")
@requires(Role.ADMIN)
def change_role(user_id: int) -> ResponseReturnValue:
    session = db_session()
    user = users.get_user(session, user_id)  # NotFoundError: a 404 page
    try:
        users.set_role(session, user, request.form.get("role", ""), actor=current_user.email)
    except DomainError as exc:
        return _users(error=exc.message, status=status_for(exc))
    flash(f"{user.email} is now {user.role}.")
    return _after_change()


@blueprint.post("/users/<id:user_id>/<action>")
@requires(Role.ADMIN)
def user_action(user_id: int, action: str) -> ResponseReturnValue:
    """``disable``, ``enable``, ``reset`` (a new set-password link) or ``remove``."""
    if action not in USER_ACTIONS:
        abort(404)
    session = db_session()
    actor = current_user.email
    user = users.get_user(session, user_id)  # NotFoundError: a 404 page
    email = user.email
    if action != "enable" and not confirmed():
        return confirmation_page(
            title=f"{action.capitalize()} {email}?",
            consequence=consequences.user_action(user, action),
            button=f"{action.capitalize()} {email}",
            back=url_for("admin.users_page"),
        )
    try:
        if action == "reset":
            secret_key = services().settings.secret_key
            invitation = users.reset_password(
                session, user, secret_key=secret_key, actor=actor, now=utcnow()
            )
            return _users(new_link=invitation)
        if action == "remove":
            users.remove_user(session, user, actor=actor)
        else:
            users.set_disabled(session, user, action == "disable", actor=actor)
    except DomainError as exc:
        return _users(error=exc.message, status=status_for(exc))
    flash(f"{email} is {'removed' if action == 'remove' else action + 'd'}.")
    return _after_change()


def _after_change() -> ResponseReturnValue:
    """Back to the users page, or to the dashboard for an admin who just ended their own
    admin role or session."""
    if not current_user.is_authenticated or not current_user.can(Role.ADMIN):
        return redirect(url_for("admin.dashboard"), code=303)
    return redirect(url_for("admin.users_page"), code=303)


def _password_change_limit() -> str:
    return services().settings.rate_limit_login


def _password_change_account_limit() -> str:
    return services().settings.rate_limit_login_account


def _signed_in_account() -> str:
    return f"user:{current_user.get_id()}"


@blueprint.route("/account", methods=["GET", "POST"])
@requires(Role.VIEWER)
@rate_limited(
    Per(_password_change_limit),
    Per(_password_change_account_limit, _signed_in_account),
    methods=["POST"],
)  # guessing the current password
def account() -> ResponseReturnValue:
    """Change one's own password: the current one is required; other sessions end."""
    error = None
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm", ""):
            error = "The two new passwords are not the same."
        else:
            try:
                user = users.change_own_password(
                    db_session(), current_user.user, request.form.get("current_password", ""), new
                )
            except DomainError as exc:
                error = exc.message
            else:
                sign_in(user)  # this session goes on, at the new session version
                flash("Password changed. Your other sessions are signed out.")
                return redirect(url_for("admin.account"), code=303)
    return render_template(
        "admin/account.html", error=error, min_length=users.MIN_PASSWORD_LENGTH
    ), 400 if error else 200
