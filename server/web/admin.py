"""Admin pages: dashboard, releases, the streamed upload form, yank and rollout.

Thin views: validate, call one domain service, render or redirect with 303.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from wtforms import ValidationError

from server.domain import adoption, api_tokens, portal_users, usage
from server.domain import customers as customer_service
from server.domain import entitlements as ent
from server.domain import products as product_service
from server.domain import releases as release_service
from server.domain.errors import DomainError, InvalidInputError
from server.domain.facts import contract_facts, product_policy
from server.domain.models import (
    ROLES,
    ApiToken,
    ApplyReport,
    AuditEvent,
    Contract,
    Customer,
    CustomerUser,
    DownloadEvent,
    Installation,
    License,
    Product,
    Release,
    utcnow,
)
from server.storage.base import SizeLimitError, StorageError
from server.web import charts, db_session, services
from server.web.auth import csrf, requires
from server.web.uploads import MAX_FILE_PARTS, parse_streamed

blueprint = Blueprint("admin", __name__, template_folder="templates")


@blueprint.get("/")
@requires("viewer")
def dashboard() -> ResponseReturnValue:
    session = db_session()
    now = utcnow()
    counts = {
        "releases": session.scalar(select(func.count()).where(Release.published_at.is_not(None)))
        or 0,
        "licenses": session.scalar(select(func.count()).select_from(License)) or 0,
        "installations": session.scalar(select(func.count()).select_from(Installation)) or 0,
        "downloads": session.scalar(select(func.count()).select_from(DownloadEvent)) or 0,
    }
    products = list(session.scalars(select(Product.slug).order_by(Product.slug)))
    period = request.args.get("period", "days")
    period = period if period in usage.PERIODS else "days"
    product = request.args.get("product") or None
    product = product if product in products else None
    series = usage.downloads_over(session, now.date(), period, product)
    return render_template(
        "admin/dashboard.html",
        counts=counts,
        versions=usage.versions_in_use(session),
        products=products,
        product=product,
        period=period,
        series=series,
        chart=charts.downloads_chart(series, weekly=period == "weeks"),
        adoption=adoption.security_adoption(session, now),
        target=adoption.TARGET_SHARE,
    )


@blueprint.get("/releases")
@requires("viewer")
def releases() -> ResponseReturnValue:
    session = db_session()
    products = list(session.scalars(select(Product).order_by(Product.slug)))
    listing = {
        p.slug: list(reversed(release_service.list_releases(session, p.slug))) for p in products
    }
    return render_template("admin/releases.html", listing=listing)


@blueprint.get("/releases/<product>/<version>")
@requires("viewer")
def release(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    reports = dict(
        session.execute(
            select(ApplyReport.outcome, func.count())
            .where(ApplyReport.release_id == found.id)
            .group_by(ApplyReport.outcome)
        ).all()
    )
    downloads = (
        session.scalar(
            select(func.count())
            .select_from(DownloadEvent)
            .where(DownloadEvent.artifact_id.in_([a.id for a in found.artifacts]))
        )
        or 0
    )
    total = sum(reports.values())
    failed = reports.get("failure", 0) + reports.get("rolled_back", 0)
    manifest = (
        json.dumps(json.loads(found.manifest), indent=2, sort_keys=True) if found.manifest else None
    )
    return render_template(
        "admin/release.html",
        release=found,
        reports=reports,
        downloads=downloads,
        failure_rate=(failed / total) if total else None,
        manifest=manifest,
    )


@blueprint.route("/releases/new", methods=["GET", "POST"])
@csrf.exempt  # the token is checked by hand: the form is parsed as a stream, after the files
@requires("publisher")
def upload() -> ResponseReturnValue:
    products = [p.slug for p in db_session().scalars(select(Product).order_by(Product.slug))]
    if request.method == "GET":
        wanted = request.args.get("files", "1")
        rows = min(int(wanted), MAX_FILE_PARTS) if wanted.isdigit() and wanted != "0" else 1
        return _upload_page(products, {}, {}, ["linux-x86_64"] + [""] * (rows - 1))
    svc = services()
    request.max_content_length = svc.settings.max_upload_bytes * 4 + 1024 * 1024
    try:
        upload = parse_streamed(request, svc.store, svc.settings.max_upload_bytes)
    except (SizeLimitError, RequestEntityTooLarge):
        return _form_error(products, {}, {"files": "A file is larger than the upload limit."}, 413)
    except (StorageError, BadRequest) as exc:
        return _form_error(products, {}, {"files": f"The upload failed: {exc}"}, 400)
    platforms = _file_platforms(upload.form)
    values = {
        k: upload.form.get(k, "")
        for k in (
            "product",
            "version",
            "kind",
            "severity",
            "channel",
            "notes",
            "min_from",
            "customers",
            "draft",
        )
    }
    try:
        validate_csrf(upload.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        upload.abort()
        abort(400, "The form expired or did not come from this site; reload it and try again.")
    incoming = []
    chosen = {name for name, storage in upload.files.items(multi=True) if storage.filename}
    for field_name, storage in upload.files.items(multi=True):
        if field_name in chosen:
            incoming.append(
                release_service.StreamedArtifact(
                    platforms.get(field_name, ""),
                    storage.filename or "",
                    upload.writer_for(storage),
                )
            )
        else:
            upload.writer_for(storage).abort()
    problem = _file_rows_problem(platforms, chosen)
    if problem:
        upload.abort()
        return _form_error(products, values, {"platform": problem}, 400, list(platforms.values()))
    spec = release_service.ReleaseSpec(
        product=values["product"],
        version=values["version"].strip(),
        kind=values["kind"],
        severity=values["severity"] or None,
        channel=values["channel"].strip() or "stable",
        notes=values["notes"],
        min_from=values["min_from"].strip() or None,
        customers=tuple(c.strip() for c in values["customers"].split(",") if c.strip()),
        draft=bool(values["draft"]),
        platforms=tuple(i.platform for i in incoming),
    )
    try:
        signer = None if spec.draft else svc.signer("release")
    except DomainError as exc:
        upload.abort()  # nothing was handed to publish(), which would discard the files itself
        return _form_error(products, values, {"form": exc.message}, 400, list(platforms.values()))
    try:
        published = release_service.publish(
            db_session(),
            svc.store,
            signer,
            spec,
            incoming,
            actor=current_user.email,
            max_size=svc.settings.max_upload_bytes,
        )
    except DomainError as exc:
        field = str(exc.context.get("field") or "form")
        return _form_error(products, values, {field: exc.message}, 400, list(platforms.values()))
    if not published.is_draft:
        svc.patches_in_background(published.id, f"{published.product.slug} {published.version}")
    flash(
        f"{published.product.slug} {published.version} {'saved as a draft' if spec.draft else 'published'}."
    )
    target = url_for("admin.release", product=published.product.slug, version=published.version)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        # The page's script sent the form to show progress: it navigates there itself, so the
        # browser makes a real page load (and the flash message is still waiting for it).
        return jsonify(location=target)
    return redirect(target, code=303)


def _file_platforms(form: MultiDict[str, str]) -> dict[str, str]:
    """Each file row's platform, by its file field (``platform.artifact-2`` → ``artifact-2``)."""
    return {
        key.removeprefix("platform."): value.strip()
        for key, value in form.items()
        if key.startswith("platform.")
    }


def _file_rows_problem(platforms: dict[str, str], chosen: set[str]) -> str | None:
    """Why the file rows cannot be published as they are, if they cannot."""
    for field_name in chosen:
        if not platforms.get(field_name):
            return "Give the platform of every file (os-arch, e.g. linux-x86_64, or any)."
    for field_name, platform in platforms.items():
        if platform and field_name not in chosen:
            return f"No file was chosen for {platform}."
    return None


def _upload_page(
    products: list[str], values: dict[str, str], errors: dict[str, str], platforms: list[str]
) -> str:
    """The upload form; one file row per entry of ``platforms`` (their values kept)."""
    rows = [
        {
            "field": "artifact" if n == 1 else f"artifact-{n}",
            "field_id": "artifact" if n == 1 else f"artifact-{n}",
            "platform_id": "platform" if n == 1 else f"platform-{n}",
            "platform": platform,
        }
        for n, platform in enumerate(platforms or ["linux-x86_64"], start=1)
    ]
    return render_template(
        "admin/upload.html", products=products, values=values, errors=errors, file_rows=rows
    )


def _form_error(
    products: list[str],
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
    platforms: list[str] | None = None,
) -> ResponseReturnValue:
    return _upload_page(products, values, errors, platforms or []), status


@blueprint.post("/releases/<product>/<version>/publish")
@requires("publisher")
def publish_draft(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    release_service.publish_draft(session, found, services().signer("release"), current_user.email)
    flash(f"{product} {version} published.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)


@blueprint.post("/releases/<product>/<version>/yank")
@requires("publisher")
def yank(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    try:
        release_service.yank(
            session,
            found,
            reason=request.form.get("reason", ""),
            recommended_version=request.form.get("recommended") or None,
            actor=current_user.email,
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{product} {version} yanked.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)


@blueprint.post("/releases/<product>/<version>/rollout")
@requires("publisher")
def rollout(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    raw = request.form.get("percent", "")
    try:
        release_service.set_rollout(
            session, found, int(raw) if raw.strip().isdigit() else -1, actor=current_user.email
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Rollout of {product} {version} set to {found.rollout_percent}%.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)


# --------------------------------------------------------------------------- customers, licenses


def _maintenance(customer: Customer, product: Product, now: datetime) -> ent.MaintenanceStatus:
    facts = ent.LicenseFacts(
        "active",
        product.slug,
        customer.slug,
        tuple(contract_facts(c) for c in customer.contracts),
    )
    return ent.maintenance_status(
        facts, product_policy(product, services().settings.renewal_url), now
    )


@blueprint.get("/customers")
@requires("viewer")
def customers_page() -> ResponseReturnValue:
    session = db_session()
    now = utcnow()
    rows: list[tuple[Customer, Product, ent.MaintenanceStatus]] = []
    unlicensed: list[Customer] = []
    for customer in session.scalars(select(Customer).order_by(Customer.name)):
        products = {lic.product.slug: lic.product for lic in customer.licenses}
        if not products:
            unlicensed.append(customer)
        for product in products.values():
            rows.append((customer, product, _maintenance(customer, product, now)))
    soon = now.date() + timedelta(days=30)
    expiring = [
        r
        for r in rows
        if r[2].maintenance_ends_on
        and now.date() <= r[2].maintenance_ends_on <= soon
        and r[2].status in {"active", "expiring"}
    ]
    lapsed_running = []
    for customer, product, status in rows:
        if status.status != "lapsed":
            continue
        versions = sorted(
            {
                i.version
                for lic in customer.licenses
                for i in session.scalars(
                    select(Installation).where(Installation.license_id == lic.id)
                )
            }
        )
        if versions:
            lapsed_running.append((customer, product, status, versions))
    return render_template(
        "admin/customers.html",
        rows=rows,
        unlicensed=unlicensed,
        expiring=expiring,
        lapsed_running=lapsed_running,
    )


@blueprint.get("/customers/<slug>")
@requires("viewer")
def customer_page(slug: str) -> ResponseReturnValue:
    return _customer(slug)


def _customer(
    slug: str,
    new_key: str | None = None,
    error: str | None = None,
    status: int = 200,
    *,
    new_link: portal_users.Invitation | None = None,
    values: dict[str, str] | None = None,
) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    licenses = [
        (lic, customer_service.installation_count(session, lic)) for lic in customer.licenses
    ]
    products = list(session.scalars(select(Product).order_by(Product.slug)))
    return render_template(
        "admin/customer.html",
        customer=customer,
        licenses=licenses,
        products=products,
        new_key=new_key,
        new_link=new_link,
        link=portal_users.set_password_link(services().settings.public_base_url, new_link.token)
        if new_link
        else None,
        error=error,
        values=values or {},
        today=utcnow().date(),
    ), status


@blueprint.post("/customers/<slug>/licenses")
@requires("admin")
def issue_license(slug: str) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    cap = request.form.get("max_installations", "").strip()
    try:
        product = product_service.get_product(session, request.form.get("product", ""))
        _, key = customer_service.issue_license(
            session,
            customer,
            product,
            actor=current_user.email,
            label=request.form.get("label", ""),
            max_installations=int(cap) if cap.isdigit() else None,
        )
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=400)
    # Rendered, not redirected: the key is shown this once and never stored.
    return _customer(slug, new_key=key)


@blueprint.post("/customers/<slug>/licenses/<int:license_id>/<action>")
@requires("admin")
def license_action(slug: str, license_id: int, action: str) -> ResponseReturnValue:
    statuses = {"suspend": "suspended", "reactivate": "active", "revoke": "revoked"}
    session = db_session()
    lic = session.get(License, license_id)
    if action not in statuses or lic is None or lic.customer.slug != slug:
        abort(404)
    try:
        customer_service.set_license_status(
            session, lic, statuses[action], actor=current_user.email
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"License {lic.key_prefix}… is {lic.status}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/portal-users")
@requires("admin")
def add_portal_user(slug: str) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    email = request.form.get("email", "")
    try:
        invitation = portal_users.invite(
            session,
            customer,
            email,
            secret_key=services().settings.secret_key,
            actor=current_user.email,
            now=utcnow(),
        )
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=400, values={"email": email})
    # Rendered, not redirected: the link is shown this once and never stored.
    return _customer(slug, new_link=invitation)


@blueprint.post("/customers/<slug>/portal-users/<int:user_id>/<action>")
@requires("admin")
def portal_user_action(slug: str, user_id: int, action: str) -> ResponseReturnValue:
    """``link``: a new set-password link (the password is cleared); ``disable``, ``enable``."""
    session = db_session()
    user = session.get(CustomerUser, user_id)
    if action not in {"link", "disable", "enable"} or user is None or user.customer.slug != slug:
        abort(404)
    try:
        if action == "link":
            invitation = portal_users.reset(
                session,
                user,
                secret_key=services().settings.secret_key,
                actor=current_user.email,
                now=utcnow(),
            )
            return _customer(slug, new_link=invitation)
        portal_users.set_disabled(session, user, action == "disable", actor=current_user.email)
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=409)
    flash(f"Portal user {user.email} is {'disabled' if user.disabled else 'enabled'}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/contracts")
@requires("admin")
def add_contract(slug: str) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    try:
        product_slug = request.form.get("product") or None
        product = product_service.get_product(session, product_slug) if product_slug else None
        starts, ends = (
            _date(request.form.get(name, ""), name) for name in ("starts_on", "ends_on")
        )
        customer_service.add_contract(
            session,
            customer,
            request.form.get("kind", "maintenance"),
            starts,
            ends,
            actor=current_user.email,
            product=product,
        )
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=400)
    flash("Contract added.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/language")
@requires("admin")
def set_language(slug: str) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    try:
        customer_service.set_language(
            session, customer, request.form.get("language", ""), actor=current_user.email
        )
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=400)
    flash("Language saved: the portal and the next check responses use it.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/contracts/<int:contract_id>/renew")
@requires("admin")
def renew_contract(slug: str, contract_id: int) -> ResponseReturnValue:
    session = db_session()
    contract = session.get(Contract, contract_id)
    if contract is None or contract.customer.slug != slug:
        abort(404)
    renewed = customer_service.renew_contract(session, contract, actor=current_user.email)
    flash(f"Renewed: {renewed.kind} from {renewed.starts_on} to {renewed.ends_on}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


@blueprint.get("/audit")
@requires("viewer")
def audit_log() -> ResponseReturnValue:
    """Who did what, when; filterable by action and actor (newest first, 200 at a time)."""
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip()
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(200)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    session = db_session()
    events = list(session.scalars(query))
    actions = list(
        session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    )
    return render_template(
        "admin/audit.html", events=events, actions=actions, action=action, actor=actor
    )


# --------------------------------------------------------------------------- API tokens


@blueprint.get("/tokens")
@requires("admin")
def tokens_page() -> ResponseReturnValue:
    return _tokens()


def _tokens(
    new_secret: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    rows = list(
        db_session().scalars(
            select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
        )
    )
    return render_template(
        "admin/tokens.html",
        tokens=rows,
        roles=ROLES,
        new_secret=new_secret,
        error=error,
        values=values or {"role": "publisher"},
    ), status


@blueprint.post("/tokens")
@requires("admin")
def create_token() -> ResponseReturnValue:
    values = {"name": request.form.get("name", ""), "role": request.form.get("role", "")}
    try:
        _, secret = api_tokens.create_token(
            db_session(), values["name"], role=values["role"], actor=current_user.email
        )
    except DomainError as exc:
        return _tokens(error=exc.message, values=values, status=400)
    # Rendered, not redirected: the secret is shown this once and only its hash is kept.
    return _tokens(new_secret=secret)


@blueprint.post("/tokens/<int:token_id>/revoke")
@requires("admin")
def revoke_token(token_id: int) -> ResponseReturnValue:
    revoked = api_tokens.revoke_token(db_session(), token_id, actor=current_user.email)
    flash(f"Token {revoked.name} ({revoked.token_prefix}…) is revoked; CI using it is refused now.")
    return redirect(url_for("admin.tokens_page"), code=303)
