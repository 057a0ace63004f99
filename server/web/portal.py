"""The customer portal: sign in with a license key, see maintenance, download, renew.

The portal session holds only the license id and the key's hash (checked again on every page),
never the key itself. Text is English or Spanish: the customer's language setting, else the
browser's.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from packaging.version import Version
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from server.domain import checks, offers
from server.domain import entitlements as ent
from server.domain.errors import DomainError
from server.domain.licensing import authenticate_license
from server.domain.models import Artifact, Customer, License, utcnow
from server.web import db_session, services
from server.web.ratelimit import rate_limited
from server.web.tokens import DownloadGrant, make_token

blueprint = Blueprint("portal", __name__)

TEXT = {
    "en": {
        "sign_in": "Sign in to your downloads",
        "license_key": "License key",
        "go": "Sign in",
        "bad_key": "That license key is not valid.",
        "maintenance": "Maintenance",
        "releases": "Your releases",
        "download": "Download",
        "version": "Version",
        "kind": "Kind",
        "published": "Published",
        "notes": "Notes",
        "renew": "Renew maintenance",
        "missing": "You are missing {total} release(s), including {security} security revision(s). Newest: {newest}.",
        "sign_out": "Sign out",
        "none": "No releases are available to this license.",
    },
    "es": {
        "sign_in": "Acceda a sus descargas",
        "license_key": "Clave de licencia",
        "go": "Entrar",
        "bad_key": "Esa clave de licencia no es válida.",
        "maintenance": "Mantenimiento",
        "releases": "Sus versiones",
        "download": "Descargar",
        "version": "Versión",
        "kind": "Tipo",
        "published": "Publicada",
        "notes": "Notas",
        "renew": "Renovar el mantenimiento",
        "missing": "Le faltan {total} versiones, incluidas {security} revisiones de seguridad. La más reciente: {newest}.",
        "sign_out": "Salir",
        "none": "No hay versiones disponibles para esta licencia.",
    },
}


def language(customer: Customer | None = None) -> str:
    if customer is not None and customer.language in TEXT:
        return customer.language
    return request.accept_languages.best_match(list(TEXT)) or "en"


class KeyForm(FlaskForm):
    key = PasswordField("License key", validators=[DataRequired(), Length(max=200)])


def _portal_login_limit() -> str:
    return services().settings.rate_limit_login


@blueprint.route("/login", methods=["GET", "POST"])
@rate_limited(_portal_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    form = KeyForm()
    t = TEXT[language()]
    error = None
    if form.validate_on_submit():
        try:
            view = authenticate_license(db_session(), (form.key.data or "").strip())
        except DomainError:
            error = t["bad_key"]
        else:
            lic = db_session().get(License, view.id)
            assert lic is not None
            session.clear()
            session["portal"] = {"license": lic.id, "key_hash": lic.key_hash}
            session.permanent = True
            return redirect(url_for("portal.home"), code=303)
    return render_template("portal/login.html", form=form, t=t, error=error), 400 if error else 200


@blueprint.post("/logout")
def logout() -> Response:
    session.pop("portal", None)
    return redirect(url_for("portal.login"), code=303)


def _current_license() -> License | None:
    held = session.get("portal")
    if not isinstance(held, dict):
        return None
    lic = db_session().get(License, held.get("license"))
    if lic is None or lic.key_hash != held.get("key_hash") or lic.status != "active":
        return None  # revoked or suspended since: the portal closes too
    return lic


@blueprint.get("/")
def home() -> ResponseReturnValue:
    lic = _current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    settings = services().settings
    catalog = services().catalogs.get(
        db_session(), lic.product_id, lic.product.catalog_revision, settings.renewal_url
    )
    facts = checks.license_facts(lic)
    now = utcnow()
    status = ent.maintenance_status(facts, catalog.policy, now)
    everything = catalog.index.newest_first
    entitled = [
        r
        for r in everything
        if ent.decide(facts, catalog.policy, r, now, releases=everything, status=status).offerable
    ][:20]
    renewal = _renewal(
        facts, catalog, status, entitled[0].version if entitled else Version("0"), now
    )
    links: dict[int, list[tuple[str, str]]] = {}
    for release in entitled:
        for artifact in db_session().scalars(
            select(Artifact).where(Artifact.release_id == release.id)
        ):
            token = make_token(settings.secret_key, DownloadGrant(lic.id, artifact.id))
            links.setdefault(release.id, []).append(
                (artifact.platform, url_for("updates.download", token=token))
            )
    lang = language(lic.customer)
    return render_template(
        "portal/home.html",
        lic=lic,
        status=status,
        renewal=renewal,
        releases=entitled,
        links=links,
        t=TEXT[lang],
        lang=lang,
        renewal_url=catalog.policy.renewal_url,
    )


def _renewal(
    facts: ent.LicenseFacts,
    catalog: checks.Catalog,
    status: ent.MaintenanceStatus,
    newest: Version,
    now: datetime,
) -> offers.RenewalSummary | None:
    """What renewal would bring beyond the newest release the customer has, on any platform."""
    if status.status not in {"expiring", "grace", "lapsed", "none"}:
        return None
    platforms = sorted({p for r in catalog.index.newest_first for p in r.platforms})
    summaries = [
        offers.renewal_summary(
            facts,
            catalog.policy,
            catalog.index,
            installed_version=newest,
            platform=platform,
            channel="stable",
            now=now,
            status=status,
        )
        for platform in platforms
    ]
    found = [s for s in summaries if s is not None]
    return max(found, key=lambda s: s.updates + s.security + s.versions, default=None)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint, url_prefix="/portal")
