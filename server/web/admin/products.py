"""Products: the list with a form to add one, and one product's page where admins edit its
name and policy, add a line and move a line through its lifecycle."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import products as product_service
from server.domain.errors import DomainError, InvalidInputError
from server.domain.models import Product
from server.domain.vocabulary import LapsePolicy, LineStatus, Role, values
from server.web import db_session
from server.web.admin.blueprint import blueprint
from server.web.auth import requires
from server.web.converters import small_int
from server.web.errors import status_for

POLICY_FIELDS = ("lapse_policy", "timezone", "renewal_url", *product_service.POLICY_LIMITS)


def _form(*names: str) -> dict[str, str]:
    return {name: request.form.get(name, "").strip() for name in names}


def _policy(form: dict[str, str]) -> product_service.Policy:
    """The policy typed in the form.

    Raises:
        InvalidInputError: a number field holds something else than a whole number.
    """
    numbers = {}
    for field, maximum in product_service.POLICY_LIMITS.items():
        number = small_int(form[field])
        if number is None or number > maximum:
            raise InvalidInputError(field, f"must be a whole number from 0 to {maximum}")
        numbers[field] = number
    return product_service.Policy(
        lapse_policy=form["lapse_policy"],
        timezone=form["timezone"] or "UTC",
        renewal_url=form["renewal_url"] or None,
        **numbers,
    )


def _values(product: Product | None) -> dict[str, str]:
    """A form's starting values: the product's, or a new product's defaults."""
    policy = product or product_service.Policy()
    found = {field: str(getattr(policy, field) or "") for field in POLICY_FIELDS}
    found["name"] = product.name if product else ""
    found["slug"] = product.slug if product else ""
    return found


def _render(
    template: str,
    *,
    product: Product | None = None,
    values_: dict[str, str] | None = None,
    error: DomainError | None = None,
) -> ResponseReturnValue:
    return render_template(
        template,
        product=product,
        products=product_service.list_products(db_session()),
        values=values_ or _values(product),
        error=error.message if error else None,
        error_field=error.context.get("field") if error else None,
        lapse_policies=values(LapsePolicy),
        line_statuses=values(LineStatus),
        limits=product_service.POLICY_LIMITS,
    ), status_for(error) if error else 200


@blueprint.get("/products")
@requires(Role.VIEWER)
def products_page() -> ResponseReturnValue:
    return _render("admin/products.html")


@blueprint.post("/products")
@requires(Role.ADMIN)
def add_product() -> ResponseReturnValue:
    form = _form("slug", "name", *POLICY_FIELDS)
    try:
        policy = _policy(form)
        product = product_service.add_product(
            db_session(),
            form["slug"],
            form["name"],
            actor=current_user.email,
            lapse_policy=policy.lapse_policy,
            security_carveout_months=policy.security_carveout_months,
            grace_days=policy.grace_days,
            expiring_window_days=policy.expiring_window_days,
            timezone=policy.timezone,
            renewal_url=policy.renewal_url,
        )
    except DomainError as exc:
        db_session().rollback()
        return _render("admin/products.html", values_=form, error=exc)
    flash(f"Product {product.slug} added.")
    return redirect(url_for("admin.product_page", slug=product.slug), code=303)


@blueprint.get("/products/<slug>")
@requires(Role.VIEWER)
def product_page(slug: str) -> ResponseReturnValue:
    product = product_service.get_product(db_session(), slug)  # NotFoundError: a 404
    return _render("admin/product.html", product=product)


@blueprint.post("/products/<slug>")
@requires(Role.ADMIN)
def edit_product(slug: str) -> ResponseReturnValue:
    session = db_session()
    product = product_service.get_product(session, slug)
    form = _form("name", *POLICY_FIELDS)
    try:
        product_service.update_product(
            session, product, name=form["name"], policy=_policy(form), actor=current_user.email
        )
    except DomainError as exc:
        session.rollback()
        return _render("admin/product.html", product=product, values_=form, error=exc)
    flash(f"Product {product.slug} saved.")
    return redirect(url_for("admin.product_page", slug=slug), code=303)


@blueprint.post("/products/<slug>/lines")
@requires(Role.ADMIN)
def add_line(slug: str) -> ResponseReturnValue:
    session = db_session()
    product = product_service.get_product(session, slug)
    form = _form("line", "status")
    try:
        product_service.add_line(
            session, product, form["line"], form["status"], actor=current_user.email
        )
    except DomainError as exc:
        session.rollback()
        return _render(
            "admin/product.html", product=product, values_={**_values(product), **form}, error=exc
        )
    flash(f"Line {form['line']} added.")
    return redirect(url_for("admin.product_page", slug=slug), code=303)


@blueprint.post("/products/<slug>/lines/<line>")
@requires(Role.ADMIN)
def set_line_status(slug: str, line: str) -> ResponseReturnValue:
    session = db_session()
    product = product_service.get_product(session, slug)
    try:
        product_service.set_line_status(
            session, product, line, request.form.get("status", ""), actor=current_user.email
        )
    except DomainError as exc:
        session.rollback()
        return _render("admin/product.html", product=product, error=exc)
    flash(f"Line {line} is now {request.form.get('status')}.")
    return redirect(url_for("admin.product_page", slug=slug), code=303)
