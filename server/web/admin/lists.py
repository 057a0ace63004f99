"""The lists: customers with their maintenance, every license, contracts, lapsed customers still
running the product, installations, releases and the audit log. Each page is searchable,
filtered, sorted and paged; ``<list>.csv`` exports the same filtered list in the same order.

Each view reads its filters into a ``fetch(window)`` over one domain list function, then
renders one page of it or streams every page of it as CSV. The page's rule is registered last
(the decorator nearest the function comes first), so that ``url_for`` without ``export`` builds
the page's URL, not the export's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import render_template
from flask.typing import ResponseReturnValue

from server.domain import audit, listings
from server.domain.maintenance import CustomerMaintenance
from server.domain.models import AuditEvent, Contract, Release, utcnow
from server.domain.paging import Page, Window, every_row
from server.domain.products import list_products
from server.domain.vocabulary import (
    ContractState,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
    ReleaseState,
    Role,
    values,
)
from server.web import db_session, services
from server.web.admin.blueprint import blueprint
from server.web.admin.listing import Column, arg, choice, csv_response, day, window
from server.web.auth import requires
from server.web.converters import small_int

R = TypeVar("R")

MAX_WITHIN_DAYS = 3660


def _list(
    export: bool,
    fetch: Callable[[Window], Page[R]],
    *,
    template: str,
    columns: Sequence[Column[R]],
    filename: str,
    status: int = 200,
    **context: Any,
) -> ResponseReturnValue:
    """One page of the list rendered with ``template``, or every row of it as CSV."""
    asked = window()
    if export:
        return csv_response(filename, columns, every_row(fetch, asked.sort))
    session = db_session()
    return render_template(
        template, page=fetch(asked), products=list_products(session), **context
    ), status


def _maintenance(row: listings.CustomerRow) -> str:
    return "; ".join(
        f"{product.slug}: {status.status}"
        + (f" until {status.maintenance_ends_on}" if status.maintenance_ends_on else "")
        for product, status in row.maintenance
    )


CUSTOMER_COLUMNS: list[Column[listings.CustomerRow]] = [
    Column("slug", lambda r: r.customer.slug),
    Column("name", lambda r: r.customer.name),
    Column("contact_emails", lambda r: "; ".join(r.customer.contact_emails or [])),
    Column("language", lambda r: r.customer.language),
    Column("licenses", lambda r: r.licenses),
    Column("maintenance", _maintenance),
    Column("added", lambda r: r.customer.created_at),
    Column("notes", lambda r: r.customer.notes),
]


@blueprint.get("/customers.csv", defaults={"export": True})
@blueprint.get("/customers", defaults={"export": False})
@requires(Role.VIEWER)
def customers_page(export: bool) -> ResponseReturnValue:
    """Customers with their maintenance; search by name, slug, e-mail or license key, filter
    by maintenance status and product (the admin API's filters)."""
    search, product = arg("q"), arg("product")
    maintenance = choice(Maintenance, "maintenance")
    now, renewal_url = utcnow(), services().settings.renewal_url
    memo: dict[str, list[int]] = {}  # an export's pages decide the maintenance filter once

    def fetch(asked: Window) -> Page[listings.CustomerRow]:
        return listings.customers(
            db_session(),
            asked,
            search=search,
            now=now,
            renewal_url=renewal_url,
            maintenance=maintenance,
            product=product,
            memo=memo,
        )

    return _list(
        export,
        fetch,
        template="admin/customers.html",
        columns=CUSTOMER_COLUMNS,
        filename="customers.csv",
        q=search,
        filters={"maintenance": maintenance or "", "product": product},
        statuses=values(Maintenance),
    )


LICENSE_COLUMNS: list[Column[listings.LicenseRow]] = [
    Column("key_prefix", lambda r: r.license.key_prefix),
    Column("label", lambda r: r.license.label),
    Column("customer", lambda r: r.license.customer.slug),
    Column("customer_name", lambda r: r.license.customer.name),
    Column("product", lambda r: r.license.product.slug),
    Column("status", lambda r: r.license.status),
    Column("installations", lambda r: r.installations),
    Column("max_installations", lambda r: r.license.max_installations),
    Column("issued", lambda r: r.license.created_at),
]


@blueprint.get("/licenses.csv", defaults={"export": True})
@blueprint.get("/licenses", defaults={"export": False})
@requires(Role.VIEWER)
def licenses_page(export: bool) -> ResponseReturnValue:
    """Every license: find one by its key or key prefix, a customer, product or status."""
    filters = {
        "key": arg("key"),
        "customer": arg("customer"),
        "product": arg("product"),
        "status": choice(LicenseStatus, "status"),
    }

    def fetch(asked: Window) -> Page[listings.LicenseRow]:
        return listings.licenses(db_session(), asked, **filters)  # type: ignore[arg-type]

    return _list(
        export,
        fetch,
        template="admin/licenses.html",
        columns=LICENSE_COLUMNS,
        filename="licenses.csv",
        filters=filters,
        statuses=values(LicenseStatus),
    )


CONTRACT_COLUMNS: list[Column[Contract]] = [
    Column("customer", lambda k: k.customer.slug),
    Column("customer_name", lambda k: k.customer.name),
    Column("kind", lambda k: k.kind),
    Column("product", lambda k: k.product.slug if k.product else "all"),
    Column("starts_on", lambda k: k.starts_on),
    Column("ends_on", lambda k: k.ends_on),
    Column("note", lambda k: k.note),
]


@blueprint.get("/contracts.csv", defaults={"export": True})
@blueprint.get("/contracts", defaults={"export": False})
@requires(Role.VIEWER)
def contracts_page(export: bool) -> ResponseReturnValue:
    """Contracts current, ending within N days, ended or lapsed (not renewed)."""
    state = choice(ContractState, "state")
    within = small_int(arg("days"), MAX_WITHIN_DAYS)
    within = 30 if within is None else within
    search, product, today = arg("q"), arg("product"), utcnow().date()

    def fetch(asked: Window) -> Page[Contract]:
        return listings.contracts(
            db_session(),
            asked,
            today=today,
            state=state,
            within_days=within,
            search=search,
            product=product,
        )

    return _list(
        export,
        fetch,
        template="admin/contracts.html",
        columns=CONTRACT_COLUMNS,
        filename="contracts.csv",
        filters={"state": state or "", "days": within, "q": search, "product": product},
        states=values(ContractState),
        today=today,
    )


LAPSED_COLUMNS: list[Column[CustomerMaintenance]] = [
    Column("customer", lambda r: r.customer.slug),
    Column("customer_name", lambda r: r.customer.name),
    Column("product", lambda r: r.product.slug),
    Column("maintenance_ended_on", lambda r: r.status.maintenance_ends_on),
    Column("versions_running", lambda r: " ".join(r.running)),
    Column("contact_emails", lambda r: "; ".join(r.customer.contact_emails or [])),
]


@blueprint.get("/lapsed.csv", defaults={"export": True})
@blueprint.get("/lapsed", defaults={"export": False})
@requires(Role.VIEWER)
def lapsed_page(export: bool) -> ResponseReturnValue:
    """Customers whose maintenance lapsed and whose installations still report."""
    product, now, renewal_url = arg("product"), utcnow(), services().settings.renewal_url

    def fetch(asked: Window) -> Page[CustomerMaintenance]:
        return listings.lapsed_running(
            db_session(), asked, now=now, renewal_url=renewal_url, product=product
        )

    return _list(
        export,
        fetch,
        template="admin/lapsed.html",
        columns=LAPSED_COLUMNS,
        filename="lapsed.csv",
        filters={"product": product},
    )


INSTALLATION_COLUMNS: list[Column[Any]] = [
    Column("customer", lambda r: r[2].slug),
    Column("customer_name", lambda r: r[2].name),
    Column("product", lambda r: r[3].slug),
    Column("license", lambda r: r[1].key_prefix),
    Column("installation_id", lambda r: r[0].uid),
    Column("version", lambda r: r[0].version),
    Column("platform", lambda r: r[0].platform),
    Column("channel", lambda r: r[0].channel),
    Column("first_seen", lambda r: r[0].first_seen),
    Column("last_seen", lambda r: r[0].last_seen),
]


@blueprint.get("/installations.csv", defaults={"export": True})
@blueprint.get("/installations", defaults={"export": False})
@requires(Role.VIEWER)
def installations_page(export: bool) -> ResponseReturnValue:
    """Installations with version, platform and last seen; per customer, product, version."""
    filters = {name: arg(name) for name in ("customer", "product", "version", "platform", "search")}

    def fetch(asked: Window) -> Page[Any]:
        return listings.installations(db_session(), asked, **filters)

    return _list(
        export,
        fetch,
        template="admin/installations.html",
        columns=INSTALLATION_COLUMNS,
        filename="installations.csv",
        filters=filters,
    )


RELEASE_COLUMNS: list[Column[Release]] = [
    Column("product", lambda r: r.product.slug),
    Column("version", lambda r: r.version),
    Column("kind", lambda r: r.kind),
    Column("severity", lambda r: r.severity),
    Column("channel", lambda r: r.channel),
    Column("line", lambda r: r.line.name),
    Column("state", lambda r: r.state),
    Column("published_at", lambda r: r.published_at),
    Column("rollout_percent", lambda r: r.rollout_percent),
    Column("platforms", lambda r: " ".join(a.platform for a in r.artifacts)),
]


@blueprint.get("/releases.csv", defaults={"export": True})
@blueprint.get("/releases", defaults={"export": False})
@requires(Role.VIEWER)
def releases(export: bool) -> ResponseReturnValue:
    """Every product's releases, newest first, by product, kind, state, channel, version."""
    filters = {
        "product": arg("product"),
        "kind": choice(ReleaseKind, "kind"),
        "state": choice(ReleaseState, "state"),
        "channel": arg("channel"),
        "search": arg("q"),
    }

    def fetch(asked: Window) -> Page[Release]:
        return listings.releases(db_session(), asked, **filters)  # type: ignore[arg-type]

    return _list(
        export,
        fetch,
        template="admin/releases.html",
        columns=RELEASE_COLUMNS,
        filename="releases.csv",
        filters=filters,
        kinds=values(ReleaseKind),
        states=values(ReleaseState),
    )


AUDIT_COLUMNS: list[Column[AuditEvent]] = [
    Column("at", lambda e: e.at),
    Column("actor", lambda e: e.actor),
    Column("action", lambda e: e.action),
    Column("target", lambda e: e.target),
    Column("details", lambda e: " ".join(f"{k}={v}" for k, v in e.details.items())),
]


@blueprint.get("/audit.csv", defaults={"export": True})
@blueprint.get("/audit", defaults={"export": False})
@requires(Role.VIEWER)
def audit_log(export: bool) -> ResponseReturnValue:
    """Who did what, when: by action, actor and a range of days, newest first."""
    action, actor, target = arg("action"), arg("actor"), arg("target")
    errors: dict[str, str] = {}
    dates = {}
    for name in ("since", "until"):
        try:
            dates[name] = day(name)
        except ValueError:
            errors[name] = f"{arg(name)!r} is not a date (YYYY-MM-DD)"
            dates[name] = None

    def fetch(asked: Window) -> Page[AuditEvent]:
        return audit.events(db_session(), asked, action=action, actor=actor, target=target, **dates)

    return _list(
        export and not errors,
        fetch,
        template="admin/audit.html",
        columns=AUDIT_COLUMNS,
        filename="audit.csv",
        status=400 if errors else 200,
        filters={
            "action": action,
            "actor": actor,
            "target": target,
            "since": arg("since"),
            "until": arg("until"),
        },
        actions=audit.actions(db_session()),
        errors=errors,
    )
