"""Signing in to the portal: with a license key, or as a portal user with email and password
(set once through the link an admin handed out); signing out ends the session server-side for
both, so a copied cookie dies with it.

The portal session holds only what is checked again on every page: the token of a key session
recorded in the database (:mod:`server.domain.portal_sessions`), or the portal user's id and
session version; never a key or a password. Signing in starts a fresh session, CSRF secret
included.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from server.db.licenses import LicenseReads
from server.domain import portal_sessions, portal_users
from server.domain.errors import (
    DomainError,
    InvalidInputError,
    InvitationExpiredError,
    LicenseRevokedError,
    LicenseSuspendedError,
)
from server.domain.licensing import authenticate_license
from server.domain.models import CustomerUser, License, utcnow
from server.domain.standing import refused_status
from server.domain.vocabulary import LicenseStatus
from server.web import db_session, services
from server.web.auth import fresh_session
from server.web.i18n import gettext as _
from server.web.i18n import use_language
from server.web.portal.blueprint import blueprint
from server.web.ratelimit import Per, link_token, rate_limited, submitted


class KeyForm(FlaskForm):
    key = PasswordField("License key", validators=[DataRequired(), Length(max=200)])


class AccountForm(FlaskForm):
    """Email and password; prefixed (``user-…``) so that it can share the page with KeyForm."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("The same password again", validators=[DataRequired()])


def _portal_login_limit() -> str:
    return services().settings.rate_limit_login


def _account_limit() -> str:
    return services().settings.rate_limit_login_account


@blueprint.route("/login", methods=["GET", "POST"])
@rate_limited(  # one counter per address for both ways in; one per email, and per license key
    Per(_portal_login_limit),
    Per(_account_limit, submitted("user-email", fold_case=True)),
    Per(_account_limit, submitted("key")),
    methods=["POST"],
)
def login() -> ResponseReturnValue:
    """Two ways in on one page: a license key, or a portal user's email and password."""
    key_form = KeyForm()
    account_form = AccountForm(prefix="user")
    lang = use_language()
    key_error = account_error = None
    refused = None  # a suspended or revoked license: what it means and whom to ask
    if request.method == "POST" and "user-email" in request.form:
        if account_form.validate_on_submit():
            try:
                user = portal_users.authenticate(
                    db_session(),
                    account_form.email.data or "",
                    account_form.password.data or "",
                    now=utcnow(),
                )
            except DomainError:
                account_error = _("Wrong email or password.")
            else:
                sign_in_user(user)
                return redirect(url_for("portal.home"), code=303)
        else:
            account_error = _("Wrong email or password.")
    elif key_form.validate_on_submit():
        try:
            view = authenticate_license(
                LicenseReads(db_session()), (key_form.key.data or "").strip()
            )
        except LicenseSuspendedError:
            refused = refused_status(LicenseStatus.SUSPENDED)
        except LicenseRevokedError:
            refused = refused_status(LicenseStatus.REVOKED)
        except DomainError:
            key_error = _("That license key is not valid.")
        else:
            lic = db_session().get(License, view.id)
            assert lic is not None
            fresh_session()  # no session fixation: a fresh cookie and CSRF secret
            session["portal"] = {
                "key_session": portal_sessions.open_session(
                    db_session(), lic, now=utcnow(), lifetime=current_app.permanent_session_lifetime
                )
            }
            session.permanent = True
            return redirect(url_for("portal.home"), code=303)
    elif request.method == "POST":
        key_error = _("Please fill in this field.")
    return render_template(
        "portal/login.html",
        form=key_form,
        account_form=account_form,
        error=key_error,
        account_error=account_error,
        refused=refused,
        lang=lang,
    ), 400 if request.method == "POST" else 200


def sign_in_user(user: CustomerUser) -> None:
    """Start a fresh portal session for ``user`` at their current session version."""
    fresh_session()  # no session fixation: a fresh cookie and CSRF secret
    session["portal"] = {"user": user.id, "version": user.session_version}
    session.permanent = True


@blueprint.post("/logout")
def logout() -> Response:
    user = current_user()
    if user is not None:
        portal_users.sign_out(db_session(), user)  # copies of this cookie die too
    elif "key_session" in _held():
        portal_sessions.close_session(db_session(), _held()["key_session"])  # and these
    session.pop("portal", None)
    return redirect(url_for("portal.login"), code=303)


def _held() -> dict[str, Any]:
    held = session.get("portal")
    return held if isinstance(held, dict) else {}


def current_license() -> License | None:
    """The license a key sign-in holds, while its session is open and the license active."""
    return portal_sessions.session_license(db_session(), _held().get("key_session"), now=utcnow())


def current_user() -> CustomerUser | None:
    """The portal user a sign-in holds, while not disabled, reset or signed out."""
    held = _held()
    return portal_users.signed_in(db_session(), held.get("user"), held.get("version"))


@blueprint.route("/forgot-password", methods=["GET", "POST"])
@rate_limited(
    Per(_portal_login_limit),
    Per(_account_limit, submitted("email", fold_case=True)),
    methods=["POST"],
)
def forgot_password() -> ResponseReturnValue:
    """A portal user who forgot their password asks for a link by e-mail. The answer is the
    same whether or not the address belongs to anyone."""
    lang = use_language()
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        portal_users.forgot_password(
            db_session(), form.email.data or "", mail=services().mail_settings(), now=utcnow()
        )
        return render_template("portal/forgot_password.html", form=None, lang=lang, sent=True)
    error = _("Please fill in this field.") if request.method == "POST" else None
    return render_template(
        "portal/forgot_password.html", form=form, lang=lang, error=error, sent=False
    ), 400 if error else 200


@blueprint.route("/set-password/<token>", methods=["GET", "POST"])
@rate_limited(Per(_portal_login_limit), Per(_account_limit, link_token), methods=["POST"])
def set_password(token: str) -> ResponseReturnValue:
    """The link an admin handed out: choose a password (once), and be signed in."""
    try:
        user = portal_users.read_invitation(
            db_session(), services().settings.secret_key, token, utcnow()
        )
    except InvitationExpiredError:
        return _link_refused(expired=True)
    except DomainError:
        return _link_refused(expired=False)
    lang = use_language(user.customer)
    form = SetPasswordForm()
    error = None
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            error = _("The two passwords are not the same.")
        else:
            try:
                portal_users.set_password_with_link(
                    db_session(),
                    services().settings.secret_key,
                    token,
                    form.password.data or "",
                    now=utcnow(),
                )
            except InvalidInputError:
                error = _(
                    "The password must have at least {n} characters.",
                    n=portal_users.MIN_PASSWORD_LENGTH,
                )
            else:
                sign_in_user(user)
                return redirect(url_for("portal.home"), code=303)
    elif request.method == "POST":
        error = _("Please fill in this field.")
    return render_template(
        "portal/set_password.html",
        form=form,
        user=user,
        lang=lang,
        error=error,
        min_length=portal_users.MIN_PASSWORD_LENGTH,
    ), 400 if error else 200


def _link_refused(*, expired: bool) -> ResponseReturnValue:
    lang = use_language()
    if expired:
        error = _(
            "This link has expired. Ask your vendor for a new one, or ask for one on the sign-in page."
        )
    else:
        error = _(
            "This link is not valid or was used already. Ask your vendor for a new one, or ask for one on the sign-in page."
        )
    return render_template(
        "portal/set_password.html", form=None, lang=lang, error=error
    ), 410 if expired else 400
