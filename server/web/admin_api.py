"""Admin API v1 (docs/admin-api.md): products and lines, customers, contracts, licenses, portal
users, installations and the audit log, for a billing system or a CRM with a scoped token.

Every view parses, calls one domain service and renders JSON. Around them: lists page with an
opaque cursor; a POST sent with ``Idempotency-Key`` is run once per token and key (a retry gets
the first answer); a GET of a customer, contract or license carries an ETag, and a change sent
with ``If-Match`` is refused with 412 when the row changed since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, g, jsonify, request
from flask.typing import ResponseReturnValue

from server.domain import api_lists, idempotency, portal_users, products
from server.domain import customers as customer_service
from server.domain.cursors import Page
from server.domain.errors import InvalidInputError
from server.domain.models import (
    AuditEvent,
    Contract,
    Customer,
    CustomerUser,
    Installation,
    License,
    Product,
    utcnow,
)
from server.domain.trust import parse_iso
from server.domain.vocabulary import ContractKind, Scope
from server.web import db_session, services
from server.web.api import bearer_token, current_token, require_scope
from server.web.converters import small_int
from server.web.json_body import optional_text, read_object, text

PREFIX = "/api/v1/admin"
blueprint = Blueprint("admin_api", __name__, url_prefix=PREFIX)

READ_CUSTOMERS = Scope.CUSTOMERS_READ
WRITE_CUSTOMERS = Scope.CUSTOMERS_WRITE


# --- request parsing -------------------------------------------------------------------------


def _emails(body: dict[str, Any]) -> list[str]:
    """``contact_emails``: a list of addresses (checked by the domain), absent or null for none."""
    value = body.get("contact_emails")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError("contact_emails", "must be a list of e-mail addresses")
    return value


def _whole(body: dict[str, Any], name: str, default: int | None, *, nullable: bool = False) -> Any:
    if name not in body:
        return default
    value = body[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
        raise InvalidInputError(name, "must be a whole number from 0" + (" or null" * nullable))
    return value


def _day(text: object, name: str, *, required: bool = False) -> date | None:
    if text is None or text == "":
        if required:
            raise InvalidInputError(name, "is required (YYYY-MM-DD)")
        return None
    if not isinstance(text, str) or len(text) != 10:
        raise InvalidInputError(name, "must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(name, "must be a date, YYYY-MM-DD") from None


def _moment(name: str) -> datetime | None:
    text = request.args.get(name, "")
    if not text:
        return None
    try:
        if len(text) > 40:
            raise ValueError(text)
        return parse_iso(text)
    except Exception:  # noqa: BLE001 - every parse failure is the same bad input
        raise InvalidInputError(name, "must be an ISO-8601 time with a zone") from None


def _arg(name: str) -> str:
    value = request.args.get(name, "")
    if len(value) > 200:
        raise InvalidInputError(name, "is too long")
    return value


def _paging() -> dict[str, Any]:
    limit_text = request.args.get("limit")
    limit = None
    if limit_text is not None:
        limit = small_int(limit_text)
        if limit is None or limit < 1:
            raise InvalidInputError("limit", "must be a whole number from 1")
    cursor = request.args.get("cursor") or None
    if cursor is not None and len(cursor) > 40:
        raise InvalidInputError("cursor", "is not a cursor from a previous page")
    return {"cursor": cursor, "limit": limit}


def _page(page: Page[Any], render: Any) -> Response:
    return jsonify({"items": [render(item) for item in page.items], "next": page.next})


def _actor() -> str:
    return f"token:{current_token().name}"


# --- optimistic concurrency ------------------------------------------------------------------


def _etag(data: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _check_if_match(current: dict[str, Any]) -> None:
    """412 when the request's If-Match names another version than ``current``'s."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" in wanted or _etag(current) in wanted:
        return
    abort(412, "changed since you read it (If-Match is stale): read it again, then retry")


def _with_etag(data: dict[str, Any], stored: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["ETag"] = _etag(stored)
    return response


# --- idempotency -----------------------------------------------------------------------------


@blueprint.before_request
def _replay_or_reserve() -> ResponseReturnValue | None:
    """A POST with Idempotency-Key: replay the stored answer, or reserve the key for this one."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None or request.endpoint is None:
        return None
    view = blueprint_views.get(request.endpoint)
    if view is None:
        return None
    scope: Scope = view.required_scope
    token = bearer_token(scope)
    g.api_token = token
    fingerprint = hashlib.sha256(
        b"\n".join(
            [
                request.method.encode(),
                request.full_path.encode("utf-8", "replace"),
                request.headers.get("If-Match", "").encode("utf-8", "replace"),
                request.get_data(cache=True),
            ]
        )
    ).hexdigest()
    found = idempotency.reserve(
        db_session(),
        token.id,
        key,
        fingerprint,
        utcnow(),
        secret_key=services().settings.secret_key,
    )
    if isinstance(found, idempotency.Stored):
        response = Response(found.body, status=found.status, mimetype="application/json")
        for name, value in found.headers.items():
            response.headers[name] = value
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency_reservation = found
    return None


@blueprint.after_request
def _store_answer(response: Response) -> Response:
    reservation = g.pop("idempotency_reservation", None)
    if reservation is not None:
        kept = {k: v for k, v in response.headers.items() if k in {"ETag", "Location"}}
        idempotency.complete(
            db_session(),
            reservation,
            response.status_code,
            response.get_data(as_text=True),
            kept,
            secret_key=services().settings.secret_key,
        )
    return response


blueprint_views: dict[str, Any] = {}
View = TypeVar("View", bound=Callable[..., Any])


def _post(rule: str, scope: Scope) -> Callable[[View], View]:
    """Register a POST view needing ``scope`` (and honouring Idempotency-Key)."""

    def decorator(view: View) -> View:
        guarded = require_scope(scope)(view)
        blueprint.add_url_rule(rule, view_func=guarded, methods=["POST"])
        blueprint_views[f"{blueprint.name}.{view.__name__}"] = guarded
        return guarded

    return decorator


# --- representations -------------------------------------------------------------------------


def _iso(moment: datetime | date | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def product_json(product: Product) -> dict[str, Any]:
    return {
        "slug": product.slug,
        "name": product.name,
        "lapse_policy": product.lapse_policy,
        "grace_days": product.grace_days,
        "security_carveout_months": product.security_carveout_months,
        "expiring_window_days": product.expiring_window_days,
        "timezone": product.timezone,
        "renewal_url": product.renewal_url,
        "lines": [{"name": line.name, "status": line.status} for line in product.lines],
    }


def customer_stored(customer: Customer) -> dict[str, Any]:
    """What a customer's ETag is made of: its own fields (not its contracts' or the clock's)."""
    return {
        "slug": customer.slug,
        "name": customer.name,
        "contact_emails": list(customer.contact_emails or []),
        "language": customer.language,
        "notes": customer.notes,
        "created_at": _iso(customer.created_at),
    }


def customer_json(row: api_lists.CustomerRow) -> dict[str, Any]:
    return {
        **customer_stored(row.customer),
        "maintenance": [
            {
                "product": product.slug,
                "status": status.status,
                "ends_on": _iso(status.maintenance_ends_on),
            }
            for product, status in row.maintenance
        ],
    }


def contract_json(contract: Contract) -> dict[str, Any]:
    return {
        "id": contract.id,
        "customer": contract.customer.slug,
        "kind": contract.kind,
        "product": contract.product.slug if contract.product else None,
        "starts_on": contract.starts_on.isoformat(),
        "ends_on": contract.ends_on.isoformat(),
        "note": contract.note,
        "created_at": _iso(contract.created_at),
        "renewed_by": successor.id
        if (successor := customer_service.renewed_by(contract)) is not None
        else None,
    }


def license_json(lic: License) -> dict[str, Any]:
    return {
        "id": lic.id,
        "customer": lic.customer.slug,
        "product": lic.product.slug,
        "key_prefix": lic.key_prefix,
        "label": lic.label,
        "status": lic.status,
        "max_installations": lic.max_installations,
        "created_at": _iso(lic.created_at),
        "status_changed_at": _iso(lic.status_changed_at),
    }


def portal_user_json(user: CustomerUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "customer": user.customer.slug,
        "email": user.email,
        "state": user.state,
        "created_at": _iso(user.created_at),
        "last_login_at": _iso(user.last_login_at),
    }


def installation_json(item: tuple[Installation, License]) -> dict[str, Any]:
    inst, lic = item
    return {
        "id": inst.id,
        "uid": inst.uid,
        "customer": lic.customer.slug,
        "product": lic.product.slug,
        "license": lic.key_prefix,
        "version": inst.version,
        "platform": inst.platform,
        "channel": inst.channel,
        "first_seen": _iso(inst.first_seen),
        "last_seen": _iso(inst.last_seen),
    }


def audit_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": event.details,
    }


# --- products and lines ----------------------------------------------------------------------


@blueprint.get("/products")
@require_scope(Scope.PRODUCTS_READ)
def list_products() -> Response:
    return jsonify(
        {"items": [product_json(p) for p in products.list_products(db_session())], "next": None}
    )


@blueprint.get("/products/<product>")
@require_scope(Scope.PRODUCTS_READ)
def get_product(product: str) -> Response:
    return jsonify(product_json(products.get_product(db_session(), product)))


@_post("/products", Scope.PRODUCTS_WRITE)
def add_product() -> tuple[Response, int]:
    body = read_object()
    created = products.add_product(
        db_session(),
        text(body, "slug", required=True),
        text(body, "name"),
        actor=_actor(),
        lapse_policy=text(body, "lapse_policy", default="fallback"),
        security_carveout_months=_whole(body, "security_carveout_months", 0),
        grace_days=_whole(body, "grace_days", 0),
        expiring_window_days=_whole(body, "expiring_window_days", 30),
        timezone=text(body, "timezone", default="UTC"),
        renewal_url=optional_text(body, "renewal_url"),
    )
    return jsonify(product_json(created)), 201


@blueprint.patch("/products/<product>/lines/<line>")
@require_scope(Scope.PRODUCTS_WRITE)
def set_line_status(product: str, line: str) -> Response:
    session = db_session()
    found = products.get_product(session, product)
    products.set_line_status(
        session, found, line, text(read_object(), "status", required=True), actor=_actor()
    )
    return jsonify(product_json(found))


# --- customers -------------------------------------------------------------------------------


@blueprint.get("/customers")
@require_scope(READ_CUSTOMERS)
def list_customers() -> Response:
    page = api_lists.customers(
        db_session(),
        now=utcnow(),
        renewal_url=services().settings.renewal_url,
        q=_arg("q"),
        maintenance=_arg("maintenance"),
        product=_arg("product"),
        **_paging(),
    )
    return _page(page, customer_json)


def _customer_response(customer: Customer, status: int = 200) -> Response:
    row = api_lists.CustomerRow(
        customer,
        api_lists.customer_maintenance(customer, utcnow(), services().settings.renewal_url),
    )
    return _with_etag(customer_json(row), customer_stored(customer), status)


@blueprint.get("/customers/<slug>")
@require_scope(READ_CUSTOMERS)
def get_customer(slug: str) -> Response:
    return _customer_response(customer_service.get_customer(db_session(), slug))


@_post("/customers", WRITE_CUSTOMERS)
def add_customer() -> Response:
    body = read_object()
    customer = customer_service.add_customer(
        db_session(),
        text(body, "slug", required=True),
        text(body, "name"),
        actor=_actor(),
        contact_emails=_emails(body),
        language=text(body, "language"),
        notes=text(body, "notes"),
    )
    return _customer_response(customer, 201)


@blueprint.patch("/customers/<slug>")
@require_scope(WRITE_CUSTOMERS)
def update_customer(slug: str) -> Response:
    session = db_session()
    customer = customer_service.get_customer(session, slug)
    body = read_object()
    customer_service.hold(session, customer)
    _check_if_match(customer_stored(customer))
    # A PATCH changes the fields it names and keeps the others.
    customer_service.update_customer(
        session,
        customer,
        name=text(body, "name") if "name" in body else customer.name,
        contact_emails=_emails(body) if "contact_emails" in body else customer.contact_emails,
        language=text(body, "language") if "language" in body else customer.language,
        notes=text(body, "notes") if "notes" in body else customer.notes,
        actor=_actor(),
    )
    return _customer_response(customer)


# --- contracts -------------------------------------------------------------------------------


@blueprint.get("/contracts")
@require_scope(READ_CUSTOMERS)
def list_contracts() -> Response:
    page = api_lists.contracts(
        db_session(),
        customer=_arg("customer"),
        product=_arg("product"),
        kind=_arg("kind"),
        ends_before=_day(request.args.get("ends_before"), "ends_before"),
        ends_after=_day(request.args.get("ends_after"), "ends_after"),
        **_paging(),
    )
    return _page(page, contract_json)


def _contract_response(contract: Contract, status: int = 200) -> Response:
    data = contract_json(contract)
    return _with_etag(data, data, status)


@blueprint.get("/contracts/<id:contract_id>")
@require_scope(READ_CUSTOMERS)
def get_contract(contract_id: int) -> Response:
    return _contract_response(customer_service.get_contract(db_session(), contract_id))


@_post("/contracts", WRITE_CUSTOMERS)
def add_contract() -> Response:
    session = db_session()
    body = read_object()
    customer = customer_service.get_customer(session, text(body, "customer", required=True))
    product_slug = text(body, "product")
    contract = customer_service.add_contract(
        session,
        customer,
        text(body, "kind", default=ContractKind.MAINTENANCE),
        _day(body.get("starts_on"), "starts_on", required=True),  # type: ignore[arg-type]
        _day(body.get("ends_on"), "ends_on", required=True),  # type: ignore[arg-type]
        actor=_actor(),
        product=products.get_product(session, product_slug) if product_slug else None,
        note=text(body, "note"),
    )
    return _contract_response(contract, 201)


@_post("/contracts/<id:contract_id>/renew", WRITE_CUSTOMERS)
def renew_contract(contract_id: int) -> Response:
    session = db_session()
    contract = customer_service.get_contract(session, contract_id)
    body = read_object()
    years = _whole(body, "years", 1)
    if not 1 <= years <= 10:
        raise InvalidInputError("years", "must be from 1 to 10")
    customer_service.hold(session, contract.customer)
    _check_if_match(contract_json(contract))
    renewal = customer_service.renew_contract(session, contract, years, actor=_actor())
    return _contract_response(renewal, 201)


@_post("/contracts/<id:contract_id>/end", WRITE_CUSTOMERS)
def end_contract(contract_id: int) -> Response:
    session = db_session()
    contract = customer_service.get_contract(session, contract_id)
    body = read_object()
    ends_on = _day(body.get("ends_on"), "ends_on")
    customer_service.hold(session, contract.customer)
    _check_if_match(contract_json(contract))
    customer_service.end_contract(session, contract, ends_on, actor=_actor())
    return _contract_response(contract)


# --- licenses --------------------------------------------------------------------------------


@blueprint.get("/licenses")
@require_scope(READ_CUSTOMERS)
def list_licenses() -> Response:
    page = api_lists.licenses(
        db_session(),
        customer=_arg("customer"),
        product=_arg("product"),
        status=_arg("status"),
        prefix=_arg("prefix"),
        **_paging(),
    )
    return _page(page, license_json)


def _license_response(lic: License, status: int = 200, **extra: Any) -> Response:
    data = license_json(lic)
    return _with_etag({**data, **extra}, data, status)


@blueprint.get("/licenses/<id:license_id>")
@require_scope(READ_CUSTOMERS)
def get_license(license_id: int) -> Response:
    return _license_response(customer_service.get_license(db_session(), license_id))


@_post("/licenses/lookup", READ_CUSTOMERS)
def lookup_license() -> Response:
    """By full key or by prefix, in the body: keys stay out of URLs (and access logs)."""
    key = text(read_object(), "key", required=True)
    return _license_response(customer_service.find_license(db_session(), key.strip()))


@_post("/licenses", WRITE_CUSTOMERS)
def issue_license() -> Response:
    session = db_session()
    body = read_object()
    customer = customer_service.get_customer(session, text(body, "customer", required=True))
    product = products.get_product(session, text(body, "product", required=True))
    lic, key = customer_service.issue_license(
        session,
        customer,
        product,
        actor=_actor(),
        label=text(body, "label")[:200],
        max_installations=_whole(body, "max_installations", None, nullable=True),
    )
    return _license_response(lic, 201, key=key)


@_post("/licenses/<id:license_id>/<any(suspend, reactivate, revoke):action>", WRITE_CUSTOMERS)
def license_action(license_id: int, action: str) -> Response:
    session = db_session()
    lic = customer_service.get_license(session, license_id)
    read_object()
    customer_service.hold(session, lic.customer)
    _check_if_match(license_json(lic))
    customer_service.set_license_status(
        session, lic, customer_service.LICENSE_ACTIONS[action], actor=_actor()
    )
    return _license_response(lic)


@blueprint.patch("/licenses/<id:license_id>")
@require_scope(WRITE_CUSTOMERS)
def update_license(license_id: int) -> Response:
    session = db_session()
    lic = customer_service.get_license(session, license_id)
    body = read_object()
    if "max_installations" not in body:
        raise InvalidInputError("max_installations", "is required (a number, or null)")
    cap = _whole(body, "max_installations", None, nullable=True)
    customer_service.hold(session, lic.customer)
    _check_if_match(license_json(lic))
    customer_service.set_license_cap(session, lic, cap, actor=_actor())
    return _license_response(lic)


# --- portal users ----------------------------------------------------------------------------


@blueprint.get("/portal-users")
@require_scope(READ_CUSTOMERS)
def list_portal_users() -> Response:
    page = api_lists.portal_users(db_session(), customer=_arg("customer"), **_paging())
    return _page(page, portal_user_json)


@_post("/portal-users", WRITE_CUSTOMERS)
def invite_portal_user() -> tuple[Response, int]:
    session = db_session()
    body = read_object()
    customer = customer_service.get_customer(session, text(body, "customer", required=True))
    settings = services().settings
    invitation = portal_users.invite(
        session,
        customer,
        text(body, "email", required=True),
        secret_key=settings.secret_key,
        actor=_actor(),
        now=utcnow(),
    )
    return jsonify(
        {
            **portal_user_json(invitation.user),
            "set_password_link": portal_users.set_password_link(
                settings.public_base_url, invitation.token
            ),
        }
    ), 201


@_post("/portal-users/<id:user_id>/<any(disable, enable):action>", WRITE_CUSTOMERS)
def portal_user_action(user_id: int, action: str) -> Response:
    session = db_session()
    user = portal_users.get_user(session, user_id)
    portal_users.set_disabled(session, user, action == "disable", actor=_actor())
    return jsonify(portal_user_json(user))


# --- installations and the audit log ---------------------------------------------------------


@blueprint.get("/installations")
@require_scope(Scope.INSTALLATIONS_READ)
def list_installations() -> Response:
    page = api_lists.installations(
        db_session(),
        customer=_arg("customer"),
        product=_arg("product"),
        version=_arg("version"),
        seen_before=_moment("seen_before"),
        seen_after=_moment("seen_after"),
        **_paging(),
    )
    return _page(page, installation_json)


@blueprint.get("/audit")
@require_scope(Scope.AUDIT_READ)
def list_audit() -> Response:
    page = api_lists.audit_events(
        db_session(),
        action=_arg("action"),
        actor=_arg("actor"),
        target=_arg("target"),
        since=_moment("since"),
        until=_moment("until"),
        **_paging(),
    )
    return _page(page, audit_json)
