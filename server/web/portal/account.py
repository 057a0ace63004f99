"""What every portal page carries around its content — the vendor's brand, who is signed in,
sign-out and the language switcher — and the two things a reader does there: pick a language
(remembered in a cookie, over the browser's preference and the customer's setting) and, for a
portal user, change their password (the current one required; other sessions end)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from server.domain import messages, portal_users
from server.domain.branding import normalized_colour
from server.domain.errors import InvalidInputError
from server.web import db_session, services
from server.web.i18n import LANGUAGE_COOKIE, use_language
from server.web.i18n import gettext as _
from server.web.portal.blueprint import blueprint
from server.web.portal.signin import current_license, current_user, sign_in_user
from server.web.ratelimit import Per, rate_limited

LANGUAGE_COOKIE_DAYS = 365


@blueprint.context_processor
def _portal_chrome() -> dict[str, Any]:
    """The brand, the signed-in reader and the languages, for the portal's layout."""
    brand = services().settings.branding
    return {
        "brand": brand,
        "brand_css": bool(brand.colour),
        "portal_languages": [
            (language, messages.display_name(language)) for language in messages.LANGUAGES
        ],
        "signed_in": _signed_in,
    }


def _signed_in() -> dict[str, Any] | None:
    """Who this session is: a portal user (email, customer) or a license key (prefix, customer)."""
    user = current_user()
    if user is not None:
        return {"name": user.email, "customer": user.customer.name, "user": True}
    lic = current_license()
    if lic is not None:
        return {
            "name": _("License {key}…", key=lic.key_prefix),
            "customer": lic.customer.name,
            "user": False,
        }
    return None


@blueprint.get("/brand.css")
def brand_css() -> Response:
    """The vendor's colour as the stylesheet's variable (pages allow no inline style)."""
    colour = services().settings.branding.colour
    body = f":root {{ --brand: {normalized_colour(colour)}; }}\n" if colour else ""
    response = make_response(body)
    response.mimetype = "text/css"
    response.cache_control.max_age = 300
    return response


def _back_to(target: str | None) -> str:
    """``target`` when it is a page of the portal on this site, else the portal's home."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/portal/"):
            return target
    return url_for("portal.home")


@blueprint.post("/language")
def choose_language() -> Response:
    """Remember the reader's language (a form button per language) and go back."""
    language = request.form.get("language", "")
    response = redirect(_back_to(request.form.get("next")), code=303)
    if language in messages.LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=LANGUAGE_COOKIE_DAYS * 86400,
            httponly=True,
            samesite="Lax",
            secure=services().settings.production,
        )
    return response


def _password_limit() -> str:
    return services().settings.rate_limit_login


def _password_account_limit() -> str:
    return services().settings.rate_limit_login_account


def _signed_in_user() -> str | None:
    user = current_user()
    return f"portal-user:{user.id}" if user is not None else None


@blueprint.route("/password", methods=["GET", "POST"])
@rate_limited(  # guessing the current password
    Per(_password_limit), Per(_password_account_limit, _signed_in_user), methods=["POST"]
)
def change_password() -> ResponseReturnValue:
    """A portal user changes their password; their other sessions are signed out."""
    user = current_user()
    if user is None:
        return redirect(url_for("portal.login"))
    lang = use_language(user.customer)
    errors: dict[str, str] = {}
    changed = request.args.get("changed") == "1"
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if not request.form.get("current_password"):
            errors["current"] = _("Please fill in this field.")
        if new != request.form.get("confirm", ""):
            errors["confirm"] = _("The two passwords are not the same.")
        if not errors:
            try:
                user = portal_users.change_own_password(
                    db_session(), user, request.form.get("current_password", ""), new
                )
            except InvalidInputError as exc:
                if exc.field == "current_password":
                    errors["current"] = _("This is not your current password.")
                else:
                    errors["new"] = _(
                        "The password must have at least {n} characters.",
                        n=portal_users.MIN_PASSWORD_LENGTH,
                    )
            else:
                sign_in_user(user)  # this session goes on, at the new session version
                return redirect(url_for("portal.change_password", changed=1), code=303)
    return render_template(
        "portal/password.html",
        user=user,
        lang=lang,
        errors=errors,
        changed=changed and not errors,
        min_length=portal_users.MIN_PASSWORD_LENGTH,
    ), 400 if errors else 200
