"""Signing in to the admin web: flask-login, Argon2id, CSRF, throttling, safe redirects.

Sessions carry the user's ``session_version``; logging out (or changing the password) bumps it,
so a copied cookie stops working — Flask's signed cookie alone would outlive a logout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from server.domain import audit
from server.domain.models import AdminUser
from server.domain.users import password_matches
from server.domain.vocabulary import Role
from server.web import db_session, services
from server.web.ratelimit import Per, rate_limited, submitted

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
    user = db_session().get(AdminUser, int(ident))
    if user is None or user.disabled or user.session_version != int(version):
        return None  # logged out elsewhere, password changed, or disabled: the cookie is dead
    return SignedInUser(user)


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
        email = (form.email.data or "").strip().lower()
        user = db_session().scalar(select(AdminUser).where(AdminUser.email == email))
        # The hash is verified even for an unknown email: the answer takes as long either way.
        matches = password_matches(user.password_hash if user else None, form.password.data or "")
        if user is not None and not user.disabled and matches:
            login_user(SignedInUser(user))
            audit.record(db_session(), user.email, "user.login", user.email)
            db_session().commit()
            return redirect(safe_next(request.args.get("next")), code=303)
        form.password.errors.append("Wrong email or password.")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 400


@blueprint.post("/logout")
@login_required
def logout() -> Response:
    user = db_session().get(AdminUser, current_user.user.id)
    if user is not None:
        user.session_version += 1  # every copy of this session's cookie dies too
        audit.record(db_session(), user.email, "user.logout", user.email)
        db_session().commit()
    logout_user()
    flash("Signed out.")
    return redirect(url_for("auth.login"), code=303)


def init_app(app: Flask) -> None:
    app.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        REMEMBER_COOKIE_DURATION=timedelta(hours=8),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    app.register_blueprint(blueprint, url_prefix="/admin")
