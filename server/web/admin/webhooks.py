"""Webhooks: endpoints (add, edit, enable/disable, rotate the secret, remove), "Send test", the
delivery log of each and its Redeliver button. Admins change them; every admin role may read."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import webhooks
from server.domain.errors import DomainError
from server.domain.models import WebhookEndpoint
from server.domain.vocabulary import Role
from server.web import db_session, services
from server.web.admin.blueprint import blueprint
from server.web.auth import requires


def _spec() -> webhooks.EndpointSpec:
    form = request.form
    return webhooks.EndpointSpec(
        url=form.get("url", ""),
        description=form.get("description", ""),
        event_types=tuple(form.getlist("event_types")),
        enabled=form.get("enabled") == "on",
    )


def _allow_private() -> bool:
    return services().settings.webhook_allow_private


@blueprint.get("/webhooks")
@requires(Role.VIEWER)
def webhooks_page() -> ResponseReturnValue:
    return _list()


def _list(
    error: str | None = None, values: webhooks.EndpointSpec | None = None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "admin/webhooks.html",
        endpoints=webhooks.list_endpoints(db_session()),
        event_types=webhooks.SUBSCRIBABLE,
        error=error,
        values=values or webhooks.EndpointSpec("", "", (), enabled=True),
    ), status


@blueprint.post("/webhooks")
@requires(Role.ADMIN)
def add_webhook() -> ResponseReturnValue:
    spec = _spec()
    try:
        endpoint, secret = webhooks.create_endpoint(
            db_session(),
            spec,
            actor=current_user.email,
            allow_private=_allow_private(),
            secret_key=services().settings.secret_key,
        )
    except DomainError as exc:
        return _list(error=exc.message, values=spec, status=400)
    # Rendered, not redirected: the secret is shown this once.
    return _endpoint(endpoint, new_secret=secret)


@blueprint.get("/webhooks/<id:endpoint_id>")
@requires(Role.VIEWER)
def webhook_page(endpoint_id: int) -> ResponseReturnValue:
    return _endpoint(webhooks.get_endpoint(db_session(), endpoint_id))


def _endpoint(
    endpoint: WebhookEndpoint,
    *,
    new_secret: str | None = None,
    error: str | None = None,
    values: webhooks.EndpointSpec | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    shown = values or webhooks.EndpointSpec(
        endpoint.url, endpoint.description, tuple(endpoint.event_types), endpoint.enabled
    )
    return render_template(
        "admin/webhook.html",
        endpoint=endpoint,
        deliveries=webhooks.deliveries(db_session(), endpoint),
        event_types=webhooks.SUBSCRIBABLE,
        new_secret=new_secret,
        error=error,
        values=shown,
    ), status


@blueprint.post("/webhooks/<id:endpoint_id>")
@requires(Role.ADMIN)
def edit_webhook(endpoint_id: int) -> ResponseReturnValue:
    session = db_session()
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    spec = _spec()
    try:
        webhooks.update_endpoint(
            session, endpoint, spec, actor=current_user.email, allow_private=_allow_private()
        )
    except DomainError as exc:
        session.rollback()
        return _endpoint(endpoint, error=exc.message, values=spec, status=400)
    flash("The endpoint is saved.")
    return redirect(url_for("admin.webhook_page", endpoint_id=endpoint_id), code=303)


@blueprint.post("/webhooks/<id:endpoint_id>/secret")
@requires(Role.ADMIN)
def rotate_webhook_secret(endpoint_id: int) -> ResponseReturnValue:
    session = db_session()
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    secret = webhooks.rotate_secret(
        session, endpoint, actor=current_user.email, secret_key=services().settings.secret_key
    )
    return _endpoint(endpoint, new_secret=secret)


@blueprint.post("/webhooks/<id:endpoint_id>/test")
@requires(Role.ADMIN)
def test_webhook(endpoint_id: int) -> ResponseReturnValue:
    session = db_session()
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    try:
        event = webhooks.send_test(session, endpoint, actor=current_user.email)
    except DomainError as exc:
        return _endpoint(endpoint, error=exc.message, status=409)
    flash(f"A ping ({event.event_id}) is queued; the worker sends it in a moment.")
    return redirect(url_for("admin.webhook_page", endpoint_id=endpoint_id), code=303)


@blueprint.post("/webhooks/<id:endpoint_id>/remove")
@requires(Role.ADMIN)
def remove_webhook(endpoint_id: int) -> ResponseReturnValue:
    session = db_session()
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    url = endpoint.url
    webhooks.remove_endpoint(session, endpoint, actor=current_user.email)
    flash(f"The endpoint {url} is removed, with its delivery log.")
    return redirect(url_for("admin.webhooks_page"), code=303)


@blueprint.post("/webhooks/deliveries/<id:delivery_id>/redeliver")
@requires(Role.ADMIN)
def redeliver_webhook(delivery_id: int) -> ResponseReturnValue:
    session = db_session()
    delivery = webhooks.get_delivery(session, delivery_id)
    endpoint = delivery.endpoint
    try:
        webhooks.redeliver(session, delivery, actor=current_user.email)
    except DomainError as exc:
        return _endpoint(endpoint, error=exc.message, status=409)
    flash(f"Delivery {delivery_id} ({delivery.event.event_id}) is queued again.")
    return redirect(url_for("admin.webhook_page", endpoint_id=endpoint.id), code=303)
