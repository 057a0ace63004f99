"""The customer portal: sign in with a license key, see maintenance, download, renew.

The portal session holds only the license id and the key's hash (checked again on every page),
never the key itself. Text is English or Spanish: the customer's language setting, else the
browser's.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, send_file, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from server.domain import bundles, checks, messages, offers
from server.domain import entitlements as ent
from server.domain.errors import DomainError
from server.domain.licensing import authenticate_license
from server.domain.models import Artifact, Customer, Installation, License, Release, utcnow
from server.web import db_session, services
from server.web.ratelimit import rate_limited
from server.web.tokens import DownloadGrant, make_token

blueprint = Blueprint("portal", __name__)

TEXT: dict[str, dict[str, Any]] = {
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
        "kinds": {
            "update": "update package",
            "security": "security revision",
            "version": "new version",
        },
        "severities": {"critical": "critical", "serious": "serious", "minor": "minor"},
        "status": {
            "active": "active",
            "expiring": "expiring soon",
            "grace": "in its grace period",
            "lapsed": "lapsed",
            "none": "not covered",
        },
        "whats_new": "What is new since {version}",
        "whats_new_hint": "Your installations run {versions}. These releases came after the oldest of them.",
        "up_to_date": "Your installations are up to date.",
        "all_notes": "Release notes",
        "no_notes": "No notes for this release.",
        "offline": "Offline installation",
        "offline_hint": "For machines without internet: one file with every release you may install on a platform, checked by the agent exactly as online (vigor-agent import FILE).",
        "platform": "Platform",
        "since": "Only releases newer than",
        "since_hint": "optional, e.g. your installed version",
        "get_bundle": "Download offline bundle",
        "empty_bundle": "No release newer than {since} is available to you on {platform}.",
        "bad_since": "{since} is not a version number.",
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
        "kinds": {
            "update": "paquete de actualización",
            "security": "revisión de seguridad",
            "version": "nueva versión",
        },
        "severities": {"critical": "crítica", "serious": "grave", "minor": "leve"},
        "status": {
            "active": "activo",
            "expiring": "a punto de vencer",
            "grace": "en período de gracia",
            "lapsed": "vencido",
            "none": "sin cobertura",
        },
        "whats_new": "Novedades desde la {version}",
        "whats_new_hint": "Sus instalaciones usan {versions}. Estas versiones salieron después de la más antigua.",
        "up_to_date": "Sus instalaciones están al día.",
        "all_notes": "Notas de la versión",
        "no_notes": "Esta versión no tiene notas.",
        "offline": "Instalación sin conexión",
        "offline_hint": "Para equipos sin internet: un único archivo con todas las versiones que puede instalar en una plataforma, que el agente comprueba igual que en línea (vigor-agent import ARCHIVO).",
        "platform": "Plataforma",
        "since": "Solo versiones posteriores a",
        "since_hint": "opcional, p. ej. su versión instalada",
        "get_bundle": "Descargar paquete sin conexión",
        "empty_bundle": "No hay ninguna versión posterior a {since} disponible para usted en {platform}.",
        "bad_since": "{since} no es un número de versión.",
    },
}


def language(customer: Customer | None = None) -> str:
    """The customer's setting, else the browser's preference, else English."""
    return messages.negotiate(customer.language if customer else None, request.accept_languages)


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
    return _home(lic)


def _home(lic: License, bundle_error: str | None = None) -> ResponseReturnValue:
    settings = services().settings
    catalog = _catalog(lic)
    facts = checks.license_facts(lic)
    now = utcnow()
    status = ent.maintenance_status(facts, catalog.policy, now)
    entitled = _entitled(facts, catalog, status, now)[:20]
    renewal = _renewal(
        facts, catalog, status, entitled[0].version if entitled else Version("0"), now
    )
    session_ = db_session()
    links: dict[int, list[tuple[str, str]]] = {}
    for release in entitled:
        for artifact in session_.scalars(select(Artifact).where(Artifact.release_id == release.id)):
            token = make_token(settings.secret_key, DownloadGrant(lic.id, artifact.id))
            links.setdefault(release.id, []).append(
                (artifact.platform, url_for("updates.download", token=token))
            )
    notes = dict(
        session_.execute(
            select(Release.id, Release.notes).where(Release.id.in_([r.id for r in entitled]))
        ).all()
    )
    installed = _installed_versions(lic)
    oldest = installed[0] if installed else None
    newer = [r for r in entitled if oldest is not None and r.version > oldest]
    platforms = sorted({p for r in entitled for p in r.platforms if p != "any"}) or ["any"]
    lang = language(lic.customer)
    return render_template(
        "portal/home.html",
        lic=lic,
        status=status,
        renewal=renewal,
        releases=entitled,
        links=links,
        notes=notes,
        installed=installed,
        oldest=oldest,
        newer=newer,
        platforms=platforms,
        bundle_error=bundle_error,
        values=request.args,
        t=TEXT[lang],
        lang=lang,
        renewal_url=catalog.policy.renewal_url,
    ), 400 if bundle_error else 200


def _catalog(lic: License) -> checks.Catalog:
    return services().catalogs.get(
        db_session(), lic.product_id, lic.product.catalog_revision, services().settings.renewal_url
    )


def _entitled(
    facts: ent.LicenseFacts, catalog: checks.Catalog, status: ent.MaintenanceStatus, now: datetime
) -> list[ent.ReleaseFacts]:
    everything = catalog.index.newest_first
    return [
        r
        for r in everything
        if ent.decide(facts, catalog.policy, r, now, releases=everything, status=status).offerable
    ]


def _installed_versions(lic: License) -> list[Version]:
    """The versions this license's installations last reported, oldest first."""
    found = db_session().scalars(
        select(Installation.version).where(Installation.license_id == lic.id).distinct()
    )
    versions = set()
    for text in found:
        try:
            versions.add(Version(text))
        except InvalidVersion:
            continue  # an agent's odd report is not the customer's problem here
    return sorted(versions)


@blueprint.get("/bundle")
@rate_limited(lambda: "20/hour")  # a bundle reads every entitled artifact once
def bundle() -> ResponseReturnValue:
    """An offline bundle for this license, built on request and streamed as an attachment."""
    lic = _current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    t = TEXT[language(lic.customer)]
    platform = request.args.get("platform", "").strip()
    since_text = request.args.get("since", "").strip()
    try:
        since = Version(since_text) if since_text else None
    except InvalidVersion:
        return _home(lic, t["bad_since"].format(since=since_text[:40]))
    svc = services()
    plan = bundles.plan_bundle(
        lic, _catalog(lic), since=since, platform=platform, channel="stable", now=utcnow()
    )
    if not plan.manifests:
        return _home(lic, t["empty_bundle"].format(since=since or "0", platform=platform[:40]))
    name = f"{lic.product.slug}-{lic.customer.slug}-{utcnow():%Y%m%d}-{platform}.vgb"
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=svc.settings.instance_dir) as work:
        out = Path(work) / "bundle.vgb"
        bundles.write_bundle(db_session(), svc.store, svc.signer("check"), plan, out)
        handle = out.open("rb")  # stays readable once its directory is gone (POSIX)
    # Not resumable on purpose: each request makes a new bundle (its own signed time).
    response = send_file(
        handle,
        mimetype="application/x-tar",
        as_attachment=True,
        download_name=name,
        conditional=False,
        max_age=0,
    )
    response.content_length = os.fstat(handle.fileno()).st_size
    return response


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
