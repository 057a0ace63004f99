"""The customer portal: sign in, see maintenance, download, renew.

Two ways in: a license key, or a portal user's email and password (people at the customer,
invited by an admin; see :mod:`server.domain.portal_users`). A key sign-in shows that license;
a portal user sees their customer's active licenses (picking one when there are several) and
then the same page for it, under ``/portal/licenses/<id>/``.

The portal session holds only ids and what is checked again on every page: the license id and
the key's hash, or the portal user's id and session version; never a key or a password. Text is English or Spanish: the customer's language setting, else the
browser's.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from server.domain import bundles, messages, offers, portal_users
from server.domain import entitlements as ent
from server.domain.catalog import Catalog
from server.domain.download_links import DownloadGrant, make_token
from server.domain.errors import (
    DomainError,
    InvalidInputError,
    InvitationExpiredError,
    NotFoundError,
)
from server.domain.facts import license_facts
from server.domain.licensing import authenticate_license
from server.domain.models import (
    Artifact,
    Customer,
    CustomerUser,
    Installation,
    License,
    Release,
    utcnow,
)
from server.web import db_session, services
from server.web.ratelimit import rate_limited

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
        "with_key": "With a license key",
        "with_account": "With your email and password",
        "email": "Email",
        "password": "Password",
        "bad_login": "Wrong email or password.",
        "choose": "Choose a license",
        "choose_hint": "Your company has several licenses. Pick the one to see.",
        "no_licenses": "No license is available to your account. Ask your vendor.",
        "all_licenses": "All your licenses",
        "set_password": "Choose your password",
        "set_password_hint": "For {email}: at least {n} characters.",
        "new_password": "New password",
        "confirm_password": "The same password again",
        "save_password": "Save and sign in",
        "too_short": "The password must have at least {n} characters.",
        "mismatch": "The two passwords are not the same.",
        "link_expired": "This link has expired. Ask your vendor for a new one.",
        "link_invalid": "This link is not valid or was used already. Ask your vendor for a new one.",
        "required": "Please fill in this field.",
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
        "with_key": "Con una clave de licencia",
        "with_account": "Con su correo electrónico y contraseña",
        "email": "Correo electrónico",
        "password": "Contraseña",
        "bad_login": "Correo electrónico o contraseña incorrectos.",
        "choose": "Elija una licencia",
        "choose_hint": "Su empresa tiene varias licencias. Elija la que quiere ver.",
        "no_licenses": "Su cuenta no tiene ninguna licencia disponible. Consulte a su proveedor.",
        "all_licenses": "Todas sus licencias",
        "set_password": "Elija su contraseña",
        "set_password_hint": "Para {email}: al menos {n} caracteres.",
        "new_password": "Nueva contraseña",
        "confirm_password": "La misma contraseña otra vez",
        "save_password": "Guardar y entrar",
        "too_short": "La contraseña debe tener al menos {n} caracteres.",
        "mismatch": "Las dos contraseñas no coinciden.",
        "link_expired": "Este enlace ha caducado. Pida uno nuevo a su proveedor.",
        "link_invalid": "Este enlace no es válido o ya se usó. Pida uno nuevo a su proveedor.",
        "required": "Rellene este campo.",
    },
}


def language(customer: Customer | None = None) -> str:
    """The customer's setting, else the browser's preference, else English."""
    return messages.negotiate(customer.language if customer else None, request.accept_languages)


class KeyForm(FlaskForm):
    key = PasswordField("License key", validators=[DataRequired(), Length(max=200)])


class AccountForm(FlaskForm):
    """Email and password; prefixed (``user-…``) so that it can share the page with KeyForm."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("The same password again", validators=[DataRequired()])


def _portal_login_limit() -> str:
    return services().settings.rate_limit_login


@blueprint.route("/login", methods=["GET", "POST"])
@rate_limited(_portal_login_limit, methods=["POST"])  # one counter for both ways to sign in
def login() -> ResponseReturnValue:
    """Two ways in on one page: a license key, or a portal user's email and password."""
    key_form = KeyForm()
    account_form = AccountForm(prefix="user")
    t = TEXT[language()]
    key_error = account_error = None
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
                account_error = t["bad_login"]
            else:
                _sign_in_user(user)
                return redirect(url_for("portal.home"), code=303)
        else:
            account_error = t["bad_login"]
    elif key_form.validate_on_submit():
        try:
            view = authenticate_license(db_session(), (key_form.key.data or "").strip())
        except DomainError:
            key_error = t["bad_key"]
        else:
            lic = db_session().get(License, view.id)
            assert lic is not None
            session.clear()
            session["portal"] = {"license": lic.id, "key_hash": lic.key_hash}
            session.permanent = True
            return redirect(url_for("portal.home"), code=303)
    elif request.method == "POST":
        key_error = t["required"]
    refused = request.method == "POST"
    return render_template(
        "portal/login.html",
        form=key_form,
        account_form=account_form,
        t=t,
        error=key_error,
        account_error=account_error,
        lang=language(),
    ), 400 if refused else 200


def _sign_in_user(user: CustomerUser) -> None:
    session.clear()  # no session fixation: a fresh cookie
    session["portal"] = {"user": user.id, "version": user.session_version}
    session.permanent = True


@blueprint.post("/logout")
def logout() -> Response:
    user = _current_user()
    if user is not None:
        portal_users.sign_out(db_session(), user)  # copies of this cookie die too
    session.pop("portal", None)
    return redirect(url_for("portal.login"), code=303)


def _held() -> dict[str, Any]:
    held = session.get("portal")
    return held if isinstance(held, dict) else {}


def _current_license() -> License | None:
    """The license a key sign-in holds, while its key and status are unchanged."""
    license_id = _held().get("license")
    if not isinstance(license_id, int):
        return None
    lic = db_session().get(License, license_id)
    if lic is None or lic.key_hash != _held().get("key_hash") or lic.status != "active":
        return None  # revoked or suspended since: the portal closes too
    return lic


def _current_user() -> CustomerUser | None:
    """The portal user a sign-in holds, while not disabled, reset or signed out."""
    held = _held()
    return portal_users.signed_in(db_session(), held.get("user"), held.get("version"))


@blueprint.route("/set-password/<token>", methods=["GET", "POST"])
@rate_limited(_portal_login_limit, methods=["POST"])
def set_password(token: str) -> ResponseReturnValue:
    """The link an admin handed out: choose a password (once), and be signed in."""
    try:
        user = portal_users.read_invitation(
            db_session(), services().settings.secret_key, token, utcnow()
        )
    except InvitationExpiredError:
        return _link_refused("link_expired")
    except DomainError:
        return _link_refused("link_invalid")
    t = TEXT[language(user.customer)]
    form = SetPasswordForm()
    error = None
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            error = t["mismatch"]
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
                error = t["too_short"].format(n=portal_users.MIN_PASSWORD_LENGTH)
            else:
                _sign_in_user(user)
                return redirect(url_for("portal.home"), code=303)
    elif request.method == "POST":
        error = t["required"]
    return render_template(
        "portal/set_password.html",
        form=form,
        user=user,
        t=t,
        lang=language(user.customer),
        error=error,
        min_length=portal_users.MIN_PASSWORD_LENGTH,
    ), 400 if error else 200


def _link_refused(reason: str) -> ResponseReturnValue:
    t = TEXT[language()]
    return render_template(
        "portal/set_password.html", form=None, t=t, lang=language(), error=t[reason]
    ), 410 if reason == "link_expired" else 400


@blueprint.get("/")
def home() -> ResponseReturnValue:
    user = _current_user()
    if user is not None:
        licenses = portal_users.portal_licenses(db_session(), user)
        if len(licenses) == 1:
            return redirect(url_for("portal.license_home", license_id=licenses[0].id))
        lang = language(user.customer)
        return render_template(
            "portal/licenses.html", user=user, licenses=licenses, t=TEXT[lang], lang=lang
        )
    lic = _current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    return _home(lic, url_for("portal.bundle"))


def _user_license(license_id: int) -> tuple[CustomerUser, License] | None:
    """The signed-in portal user and one of their customer's active licenses; 404 for any other."""
    user = _current_user()
    if user is None:
        return None
    try:
        return user, portal_users.portal_license(db_session(), user, license_id)
    except NotFoundError:
        abort(404)


@blueprint.get("/licenses/<int:license_id>/")
def license_home(license_id: int) -> ResponseReturnValue:
    """The same page as a key sign-in shows, for one license of a portal user's customer."""
    found = _user_license(license_id)
    if found is None:
        return redirect(url_for("portal.login"))
    user, lic = found
    return _home(lic, url_for("portal.license_bundle", license_id=lic.id), _choose_url(user))


def _choose_url(user: CustomerUser) -> str | None:
    several = len(portal_users.portal_licenses(db_session(), user)) > 1
    return url_for("portal.home") if several else None


def _home(
    lic: License,
    bundle_url: str,
    choose_url: str | None = None,
    bundle_error: str | None = None,
) -> ResponseReturnValue:
    settings = services().settings
    catalog = _catalog(lic)
    facts = license_facts(lic)
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
        bundle_url=bundle_url,
        choose_url=choose_url,
        values=request.args,
        t=TEXT[lang],
        lang=lang,
        renewal_url=catalog.policy.renewal_url,
    ), 400 if bundle_error else 200


def _catalog(lic: License) -> Catalog:
    return services().catalogs.get(
        db_session(), lic.product_id, lic.product.catalog_revision, services().settings.renewal_url
    )


def _entitled(
    facts: ent.LicenseFacts, catalog: Catalog, status: ent.MaintenanceStatus, now: datetime
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


def _bundle_limit() -> str:
    return "20/hour"  # a bundle reads every entitled artifact once


@blueprint.get("/bundle")
@rate_limited(_bundle_limit)
def bundle() -> ResponseReturnValue:
    """An offline bundle for the license signed in with its key."""
    lic = _current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    return _bundle(lic, url_for("portal.bundle"))


@blueprint.get("/licenses/<int:license_id>/bundle")
@rate_limited(_bundle_limit)
def license_bundle(license_id: int) -> ResponseReturnValue:
    """An offline bundle for one license of a portal user's customer (404 for any other)."""
    found = _user_license(license_id)
    if found is None:
        return redirect(url_for("portal.login"))
    user, lic = found
    return _bundle(lic, url_for("portal.license_bundle", license_id=lic.id), _choose_url(user))


def _bundle(lic: License, bundle_url: str, choose_url: str | None = None) -> ResponseReturnValue:
    """An offline bundle for ``lic``, built on request and streamed as an attachment."""
    t = TEXT[language(lic.customer)]
    platform = request.args.get("platform", "").strip()
    since_text = request.args.get("since", "").strip()
    try:
        since = Version(since_text) if since_text else None
    except InvalidVersion:
        return _home(lic, bundle_url, choose_url, t["bad_since"].format(since=since_text[:40]))
    svc = services()
    plan = bundles.plan_bundle(
        lic, _catalog(lic), since=since, platform=platform, channel="stable", now=utcnow()
    )
    if not plan.manifests:
        return _home(
            lic,
            bundle_url,
            choose_url,
            t["empty_bundle"].format(since=since or "0", platform=platform[:40]),
        )
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
    catalog: Catalog,
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
