"""The webhooks part of the admin API (``/api/v1/admin/webhooks…``): endpoints, their delivery
log, redelivery and "send test" — what the admin's Webhooks pages do, for scripts.

Bearer tokens as the rest of the admin API: reading needs any role, changing needs ``admin``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from server.domain import webhooks
from server.domain.errors import InvalidInputError
from server.domain.models import WebhookDelivery, WebhookEndpoint
from server.domain.vocabulary import Scope
from server.web import db_session, services
from server.web.api import current_token, require_scope
from server.web.converters import small_int
from server.web.json_body import read_object

blueprint = Blueprint("webhooks_api", __name__, url_prefix="/api/v1/admin/webhooks")

MAX_PAGE = 200
_KIND_WORDS = {str: "a string", list: "a list", bool: "true or false"}


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": _time(endpoint.failing_since),
        "created_at": _time(endpoint.created_at),
    }


def delivery_json(row: webhooks.DeliveryRow | WebhookDelivery) -> dict[str, Any]:
    delivery = row.delivery if isinstance(row, webhooks.DeliveryRow) else row
    extra = (
        {"next_try_at": _time(row.next_try), "gave_up": row.gave_up}
        if isinstance(row, webhooks.DeliveryRow)
        else {}
    )
    return {
        "id": delivery.id,
        "event_id": delivery.event.event_id,
        "type": str(delivery.event.type),
        "state": str(delivery.state),
        "attempts": [
            {
                "number": a.number,
                "at": a.at.isoformat().replace("+00:00", "Z"),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "response_excerpt": a.response_excerpt,
                "error": a.error,
            }
            for a in delivery.log
        ],
        **extra,
    }


def _spec(body: dict[str, Any], current: WebhookEndpoint | None) -> webhooks.EndpointSpec:
    """The endpoint a JSON body describes; fields it leaves out keep ``current``'s values."""

    def field(name: str, kind: type, default: Any) -> Any:
        if name not in body:
            if default is None:
                raise InvalidInputError(name, "is required")
            return default
        value = body[name]
        if not isinstance(value, kind):
            raise InvalidInputError(name, f"must be {_KIND_WORDS[kind]}")
        return value

    types = field("event_types", list, list(current.event_types) if current else None)
    if not all(isinstance(t, str) for t in types):
        raise InvalidInputError("event_types", "must be a list of event type names")
    return webhooks.EndpointSpec(
        url=field("url", str, current.url if current else None),
        description=field("description", str, current.description if current else ""),
        event_types=tuple(types),
        enabled=field("enabled", bool, current.enabled if current else True),
    )


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    return webhooks.get_endpoint(db_session(), endpoint_id)


@blueprint.get("")
@require_scope(Scope.NOTIFICATIONS_READ)
def list_webhooks() -> Response:
    return jsonify([endpoint_json(e) for e in webhooks.list_endpoints(db_session())])


@blueprint.post("")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def create_webhook() -> tuple[Response, int]:
    token = current_token()
    endpoint, secret = webhooks.create_endpoint(
        db_session(),
        _spec(read_object(), None),
        actor=f"token:{token.name}",
        allow_private=services().settings.webhook_allow_private,
        secret_key=services().settings.secret_key,
    )
    return jsonify({**endpoint_json(endpoint), "secret": secret}), 201


@blueprint.get("/<id:endpoint_id>")
@require_scope(Scope.NOTIFICATIONS_READ)
def get_webhook(endpoint_id: int) -> Response:
    return jsonify(endpoint_json(_endpoint(endpoint_id)))


@blueprint.patch("/<id:endpoint_id>")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def update_webhook(endpoint_id: int) -> Response:
    token = current_token()
    endpoint = _endpoint(endpoint_id)
    webhooks.update_endpoint(
        db_session(),
        endpoint,
        _spec(read_object(), endpoint),
        actor=f"token:{token.name}",
        allow_private=services().settings.webhook_allow_private,
    )
    return jsonify(endpoint_json(endpoint))


@blueprint.delete("/<id:endpoint_id>")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def delete_webhook(endpoint_id: int) -> tuple[str, int]:
    token = current_token()
    webhooks.remove_endpoint(db_session(), _endpoint(endpoint_id), actor=f"token:{token.name}")
    return "", 204


@blueprint.post("/<id:endpoint_id>/secret")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def rotate_webhook_secret(endpoint_id: int) -> Response:
    token = current_token()
    secret = webhooks.rotate_secret(
        db_session(),
        _endpoint(endpoint_id),
        actor=f"token:{token.name}",
        secret_key=services().settings.secret_key,
    )
    return jsonify({"secret": secret})


@blueprint.post("/<id:endpoint_id>/test")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def test_webhook(endpoint_id: int) -> tuple[Response, int]:
    token = current_token()
    event = webhooks.send_test(db_session(), _endpoint(endpoint_id), actor=f"token:{token.name}")
    return jsonify({"event_id": event.event_id, "type": str(event.type)}), 202


@blueprint.get("/<id:endpoint_id>/deliveries")
@require_scope(Scope.NOTIFICATIONS_READ)
def list_webhook_deliveries(endpoint_id: int) -> Response:
    limit = small_int(request.args.get("limit"), MAX_PAGE) or 50
    before = small_int(request.args.get("before"))
    rows = webhooks.deliveries(db_session(), _endpoint(endpoint_id), limit=limit, before=before)
    return jsonify([delivery_json(row) for row in rows])


@blueprint.post("/deliveries/<id:delivery_id>/redeliver")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def redeliver_webhook(delivery_id: int) -> tuple[Response, int]:
    token = current_token()
    session = db_session()
    delivery = webhooks.redeliver(
        session, webhooks.get_delivery(session, delivery_id), actor=f"token:{token.name}"
    )
    return jsonify(delivery_json(delivery)), 202
