"""API tokens for the admin API: created with scopes and an expiry (the secret shown once),
listed, revoked."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import api_tokens
from server.domain.errors import DomainError
from server.domain.models import ApiToken, utcnow
from server.domain.vocabulary import Role, Scope
from server.web import db_session
from server.web.admin import consequences
from server.web.admin.blueprint import blueprint
from server.web.auth import requires
from server.web.confirm import confirmation_page, confirmed


@blueprint.get("/tokens")
@requires(Role.ADMIN)
def tokens_page() -> ResponseReturnValue:
    return _tokens()


def _tokens(
    new_secret: str | None = None,
    error: str | None = None,
    values: dict[str, object] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "admin/tokens.html",
        tokens=api_tokens.list_tokens(db_session()),
        scopes=[scope.value for scope in Scope],
        lifetimes=LIFETIMES,
        scope_names=api_tokens.scope_names,
        now=utcnow(),
        new_secret=new_secret,
        error=error,
        values=values or {"scopes": [Scope.RELEASES_PUBLISH.value], "expires_in": ""},
        consequences=consequences,
    ), status


# What the page offers for a token's lifetime ("" never expires); the CLI takes any duration.
LIFETIMES = [("", "does not expire"), ("30d", "30 days"), ("90d", "90 days"), ("1y", "1 year")]


@blueprint.post("/tokens")
@requires(Role.ADMIN)
def create_token() -> ResponseReturnValue:
    name = request.form.get("name", "")
    scopes = request.form.getlist("scopes")
    expires_in = request.form.get("expires_in", "")
    values: dict[str, object] = {"name": name, "scopes": scopes, "expires_in": expires_in}
    try:
        _, secret = api_tokens.create_token(
            db_session(),
            name,
            # A form from before scopes names a role; a form with no scope ticked is refused.
            scopes=scopes or (None if request.form.get("role") else []),
            role=request.form.get("role") or None,
            expires_in=api_tokens.parse_lifetime(expires_in),
            actor=current_user.email,
        )
    except DomainError as exc:
        return _tokens(error=exc.message, values=values, status=400)
    # Rendered, not redirected: the secret is shown this once and only its hash is kept.
    return _tokens(new_secret=secret)


@blueprint.post("/tokens/<id:token_id>/revoke")
@requires(Role.ADMIN)
def revoke_token(token_id: int) -> ResponseReturnValue:
    if not confirmed():
        token = db_session().get(ApiToken, token_id)
        if token is None:
            abort(404)
        return confirmation_page(
            title=f"Revoke token {token.name}?",
            consequence=consequences.revoke_token(token),
            button=f"Revoke {token.name}",
            back=url_for("admin.tokens_page"),
        )
    revoked = api_tokens.revoke_token(db_session(), token_id, actor=current_user.email)
    flash(
        f"Token {revoked.name} ({revoked.token_prefix}…) is revoked; anything using it is refused now."
    )
    return redirect(url_for("admin.tokens_page"), code=303)
