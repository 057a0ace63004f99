"""Signing in to the admin web: flask-login, Argon2id, CSRF, throttling, safe redirects, and
the set-password links an admin hands out.

Sessions carry the user's ``session_version``; signing out, a new password and disable bump it,
so a copied cookie stops working — Flask's signed cookie alone would outlive a logout. Signing
in starts a fresh session (:func:`fresh_session`): nothing a browser held before, a CSRF secret
planted by someone else included, survives it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from server.domain import users
from server.domain.errors import DomainError, InvalidInputError, InvitationExpiredError
from server.domain.models import AdminUser, utcnow
from server.domain.vocabulary import Role
from server.web import db_session, services
from server.web.ratelimit import Per, link_token, rate_limited, submitted

blueprint = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


class SignedInUser:
    """The flask-login user: an admin user plus the session version its cookie was issued for."""

    def __init__(self, user: AdminUser) -> None:
        self.user = user
        self.is_authenticated = True
        self.is_active = not user.disabled
        self.is_anonymous = False

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def role(self) -> Role:
        return self.user.role

    def can(self, role: Role | str) -> bool:
        """Whether this user's role may do what ``role`` may (templates name it as a string)."""
        return Role(self.user.role).allows(Role(role))


@login_manager.user_loader
def _load(user_id: str) -> SignedInUser | None:
    ident, _, version = user_id.partition(":")
    if not ident.isdigit() or not version.isdigit():
        return None
    user = users.signed_in(db_session(), int(ident), int(version))
    return None if user is None else SignedInUser(user)


def fresh_session() -> None:
    """Start a new session at sign-in: drop everything the old one held, the CSRF secret
    included (a token fixed before sign-in is dead after it), whichever area signs in."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


def sign_in(user: AdminUser) -> None:
    """Start a fresh session for ``user`` at their current session version."""
    fresh_session()
    login_user(SignedInUser(user))


def requires(role: Role | str) -> Callable[[F], F]:
    """Sign-in required, and at least ``role`` (viewer < publisher < admin)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.can(role):
                abort(403, f"this needs the {role} role")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect) or a scheme."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
        ):
            return target
    return url_for("admin.dashboard")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _login_limit() -> str:
    return services().settings.rate_limit_login


def _account_limit() -> str:
    return services().settings.rate_limit_login_account


@blueprint.route("/login", methods=["GET", "POST"])
@rate_limited(  # password guessing: per client address, and per account from any address
    Per(_login_limit), Per(_account_limit, submitted("email", fold_case=True)), methods=["POST"]
)
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.authenticate(db_session(), form.email.data or "", form.password.data or "")
        except DomainError:
            form.password.errors.append("Wrong email or password.")
        else:
            sign_in(user)
            return redirect(safe_next(request.args.get("next")), code=303)
    return render_template("auth/login.html", form=form), 400 if request.method == "POST" else 200


@blueprint.post("/logout")
@login_required
def logout() -> Response:
    users.sign_out(db_session(), current_user.user)  # every copy of this cookie dies too
    logout_user()
    flash("Signed out.")
    return redirect(url_for("auth.login"), code=303)


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("The same password again", validators=[DataRequired()])


@blueprint.route("/set-password/<token>", methods=["GET", "POST"])
@rate_limited(Per(_login_limit), Per(_account_limit, link_token), methods=["POST"])
def set_password(token: str) -> ResponseReturnValue:
    """The link an admin handed out: choose a password (once), and be signed in."""
    secret_key = services().settings.secret_key
    try:
        user = users.read_invitation(db_session(), secret_key, token, utcnow())
    except InvitationExpiredError:
        return _set_password_page(
            None, None, "This link has expired. Ask an admin for a new one.", 410
        )
    except DomainError:
        refused = "This link is not valid or was used already. Ask an admin for a new one."
        return _set_password_page(None, None, refused, 400)
    form = SetPasswordForm()
    error: str | None = None
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            error = "The two passwords are not the same."
        else:
            try:
                user = users.set_password_with_link(
                    db_session(), secret_key, token, form.password.data or "", now=utcnow()
                )
            except InvalidInputError:
                error = f"The password must have at least {users.MIN_PASSWORD_LENGTH} characters."
            else:
                sign_in(user)
                flash("Your password is set.")
                return redirect(url_for("admin.dashboard"), code=303)
    elif request.method == "POST":
        error = "Please fill in both fields."
    return _set_password_page(form, user, error, 400 if error else 200)


def _set_password_page(
    form: SetPasswordForm | None, user: AdminUser | None, error: str | None, status: int
) -> ResponseReturnValue:
    return render_template(
        "auth/set_password.html",
        form=form,
        user=user,
        error=error,
        min_length=users.MIN_PASSWORD_LENGTH,
    ), status


def init_app(app: Flask) -> None:
    app.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        REMEMBER_COOKIE_DURATION=timedelta(hours=8),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        # Flask-WTF's "SSL strict" mode (on by default) also wants a same-origin Referer on an
        # https form post: pages say Referrer-Policy: same-origin (server/web/headers.py), so
        # browsers send one to this site and to no other.
    )
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    app.register_blueprint(blueprint, url_prefix="/admin")
