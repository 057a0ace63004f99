"""Customers: the maintenance overview, one customer's licenses (the key shown once),
contracts (renewed in one step), language and portal users (the set-password link e-mailed to
them, and shown once)."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import customers as customer_service
from server.domain import portal_users
from server.domain import products as product_service
from server.domain.errors import DomainError, InvalidInputError
from server.domain.models import Contract, CustomerUser, License, utcnow
from server.domain.portal_users import set_password_link
from server.domain.vocabulary import ContractKind, Role
from server.web import db_session, services
from server.web.admin import consequences
from server.web.admin.blueprint import blueprint
from server.web.auth import requires
from server.web.confirm import confirmation_page, confirmed
from server.web.converters import small_int
from server.web.errors import status_for
from server.web.readable import field_error

CUSTOMER_FIELDS = ("name", "contact_emails", "language", "notes")

# The customer page's fields as its forms label them (errors name them so).
LABELS = {
    "starts_on": "From",
    "ends_on": "To",
    "max_installations": "Installation cap",
    "kind": "Kind",
    "product": "Product",
    "label": "Label",
    "language": "Language",
    "contact_emails": "Contact e-mails",
    "notes": "Notes",
    "name": "Name",
}


def _customer_form(template: str, **context: object) -> ResponseReturnValue:
    error = context.pop("error", None)
    assert error is None or isinstance(error, DomainError)
    return render_template(
        template,
        error=error.message if error else None,
        error_field=error.context.get("field") if error else None,
        **context,
    ), status_for(error) if error else 200


def _typed() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("slug", *CUSTOMER_FIELDS)}


@blueprint.get("/customers/new")
@requires(Role.ADMIN)
def new_customer() -> ResponseReturnValue:
    return _customer_form("admin/customer_form.html", customer=None, values={})


@blueprint.post("/customers/new")
@requires(Role.ADMIN)
def add_customer() -> ResponseReturnValue:
    form = _typed()
    try:
        customer = customer_service.add_customer(
            db_session(),
            form["slug"].strip(),
            form["name"],
            actor=current_user.email,
            contact_emails=customer_service.split_emails(form["contact_emails"]),
            language=form["language"],
            notes=form["notes"],
        )
    except DomainError as exc:
        db_session().rollback()
        return _customer_form("admin/customer_form.html", customer=None, values=form, error=exc)
    flash(f"Customer {customer.name} added.")
    return redirect(url_for("admin.customer_page", slug=customer.slug), code=303)


@blueprint.get("/customers/<slug>/edit")
@requires(Role.ADMIN)
def edit_customer(slug: str) -> ResponseReturnValue:
    customer = customer_service.get_customer(db_session(), slug)
    values = {
        "name": customer.name,
        "contact_emails": "\n".join(customer_service.contacts(customer)),
        "language": customer.language,
        "notes": customer.notes,
    }
    return _customer_form("admin/customer_form.html", customer=customer, values=values)


@blueprint.post("/customers/<slug>/edit")
@requires(Role.ADMIN)
def update_customer(slug: str) -> ResponseReturnValue:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    form = _typed()
    try:
        customer_service.update_customer(
            session,
            customer,
            name=form["name"],
            contact_emails=customer_service.split_emails(form["contact_emails"]),
            language=form["language"],
            notes=form["notes"],
            actor=current_user.email,
        )
    except DomainError as exc:
        session.rollback()
        return _customer_form("admin/customer_form.html", customer=customer, values=form, error=exc)
    flash(f"Customer {customer.name} saved.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.get("/customers/<slug>")
@requires(Role.VIEWER)
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
    licenses = customer_service.license_usage(session, customer)
    products = product_service.list_products(session)
    return render_template(
        "admin/customer.html",
        customer=customer,
        licenses=licenses,
        license_actions=customer_service.license_actions,
        renewal_period=customer_service.renewal_period,
        consequences=consequences,
        products=products,
        new_key=new_key,
        new_link=new_link,
        link=set_password_link(services().settings.public_base_url, new_link.token)
        if new_link
        else None,
        error=error,
        values=values or {},
        today=utcnow().date(),
    ), status


@blueprint.post("/customers/<slug>/licenses")
@requires(Role.ADMIN)
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
            max_installations=small_int(cap),
        )
    except DomainError as exc:
        values = {k: request.form.get(k, "") for k in ("product", "max_installations", "label")}
        return _customer(slug, error=field_error(exc.message, LABELS), status=400, values=values)
    # Rendered, not redirected: the key is shown this once and never stored.
    return _customer(slug, new_key=key)


@blueprint.post("/customers/<slug>/licenses/<id:license_id>/<action>")
@requires(Role.ADMIN)
def license_action(slug: str, license_id: int, action: str) -> ResponseReturnValue:
    session = db_session()
    lic = session.get(License, license_id)
    status = customer_service.LICENSE_ACTIONS.get(action)
    if status is None or lic is None or lic.customer.slug != slug:
        abort(404)
    if action != "reactivate" and not confirmed():
        return confirmation_page(
            title=f"{action.capitalize()} license {lic.key_prefix}…?",
            consequence=consequences.license_action(lic, action),
            button=f"{action.capitalize()} license {lic.key_prefix}…",
            back=url_for("admin.customer_page", slug=slug),
        )
    try:
        customer_service.set_license_status(session, lic, status, actor=current_user.email)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"License {lic.key_prefix}… is {lic.status}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/portal-users")
@requires(Role.ADMIN)
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
            mail=services().mail_settings(),
        )
    except DomainError as exc:
        return _customer(
            slug, error=field_error(exc.message, LABELS), status=400, values={"email": email}
        )
    # Rendered, not redirected: the link is shown this once and never stored.
    return _customer(slug, new_link=invitation)


@blueprint.post("/customers/<slug>/portal-users/<id:user_id>/<action>")
@requires(Role.ADMIN)
def portal_user_action(slug: str, user_id: int, action: str) -> ResponseReturnValue:
    """``link``: a new set-password link (the password is cleared); ``disable``, ``enable``."""
    session = db_session()
    user = session.get(CustomerUser, user_id)
    if action not in {"link", "disable", "enable"} or user is None or user.customer.slug != slug:
        abort(404)
    if action != "enable" and not confirmed():
        verb = "Disable" if action == "disable" else "Reset"
        return confirmation_page(
            title=f"{verb} portal user {user.email}?",
            consequence=consequences.portal_user_action(user, action),
            button=f"{verb} {user.email}",
            back=url_for("admin.customer_page", slug=slug),
        )
    try:
        if action == "link":
            invitation = portal_users.reset(
                session,
                user,
                secret_key=services().settings.secret_key,
                actor=current_user.email,
                now=utcnow(),
                mail=services().mail_settings(),
            )
            return _customer(slug, new_link=invitation)
        portal_users.set_disabled(session, user, action == "disable", actor=current_user.email)
    except DomainError as exc:
        return _customer(slug, error=exc.message, status=409)
    flash(f"Portal user {user.email} is {'disabled' if user.disabled else 'enabled'}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/contracts")
@requires(Role.ADMIN)
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
            request.form.get("kind", ContractKind.MAINTENANCE),
            starts,
            ends,
            actor=current_user.email,
            product=product,
        )
    except DomainError as exc:
        kept = {f"contract_{k}": request.form.get(k, "") for k in ("kind", "product")}
        kept |= {k: request.form.get(k, "") for k in ("starts_on", "ends_on")}
        return _customer(slug, error=field_error(exc.message, LABELS), status=400, values=kept)
    flash("Contract added.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


@blueprint.post("/customers/<slug>/language")
@requires(Role.ADMIN)
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


@blueprint.post("/customers/<slug>/contracts/<id:contract_id>/renew")
@requires(Role.ADMIN)
def renew_contract(slug: str, contract_id: int) -> ResponseReturnValue:
    session = db_session()
    contract = session.get(Contract, contract_id)
    if contract is None or contract.customer.slug != slug:
        abort(404)
    if not confirmed():
        return confirmation_page(
            title="Renew this contract for one year?",
            consequence=consequences.renew(contract, customer_service.renewal_period(contract)),
            button="Renew 1 year",
            back=url_for("admin.customer_page", slug=slug),
        )
    renewed = customer_service.renew_contract(session, contract, actor=current_user.email)
    flash(f"Renewed: {renewed.kind} from {renewed.starts_on} to {renewed.ends_on}.")
    return redirect(url_for("admin.customer_page", slug=slug), code=303)


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not a date (YYYY-MM-DD)") from None
