"""The webhooks part of the OpenAPI document (``server/web/webhooks_api.py``); merged into
``openapi.py``'s paths and schemas. It refers to that module's ``Error`` schema by name only,
so the two modules do not import each other."""

from __future__ import annotations

from typing import Any

from server.domain.vocabulary import DeliveryState, EventType, values
from server.domain.webhooks import SUBSCRIBABLE

JSON = "application/json"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _answer(description, _ref("Error"))


SUBSCRIBABLE_TYPES = [str(t) for t in SUBSCRIBABLE]
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "WebhookEndpoint": {
        "type": "object",
        "required": ["id", "url", "event_types", "enabled"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "description": {"type": "string"},
            "event_types": {
                "type": "array",
                "items": {"type": "string", "enum": SUBSCRIBABLE_TYPES},
            },
            "enabled": {"type": "boolean"},
            "disabled_reason": {"type": "string"},
            "consecutive_failures": {"type": "integer"},
            "failing_since": TIME_OR_NULL,
            "created_at": {"type": "string", "format": "date-time"},
            "secret": {
                "type": "string",
                "description": "Only when created: the whsec_… signing secret, shown once",
            },
        },
    },
    "WebhookEndpointInput": {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "maxLength": 500,
                # The server accepts any http(s) URL whose host is not private (unless allowed).
                "pattern": r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$",
                "description": "An http(s) URL; private and loopback hosts are refused unless "
                "VIGOR_WEBHOOK_ALLOW_PRIVATE is set",
            },
            "description": {"type": "string", "maxLength": 200, "pattern": "^[^\\x00-\\x1f]*$"},
            "event_types": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": SUBSCRIBABLE_TYPES},
            },
            "enabled": {"type": "boolean", "default": True},
        },
        # Send only these: other fields are ignored, but a NUL in any of them is refused.
        "additionalProperties": False,
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "event_id", "type", "state", "attempts"],
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "string", "description": "msg_…, the webhook-id header"},
            "type": {"type": "string", "enum": values(EventType)},
            "state": {"type": "string", "enum": values(DeliveryState)},
            "next_try_at": TIME_OR_NULL,
            "gave_up": {"type": "boolean"},
            "attempts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["number", "at", "duration_ms"],
                    "properties": {
                        "number": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "duration_ms": {"type": "integer"},
                        "status_code": {"type": ["integer", "null"]},
                        "response_excerpt": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
}


def _id(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }


_AUTH_ERRORS = {
    "401": _error("Missing or unknown token"),
    "403": _error("The token's role may not do this (changes need admin)"),
}
_CHANGE = {"required": True, "content": {JSON: {"schema": _ref("WebhookEndpointInput")}}}
_NEW = {
    "required": True,
    "content": {
        JSON: {
            "schema": {
                "allOf": [_ref("WebhookEndpointInput"), {"required": ["url", "event_types"]}]
            }
        }
    },
}


def paths() -> dict[str, Any]:
    """The ``/api/v1/admin/webhooks…`` operations."""
    endpoint = _answer("The endpoint", _ref("WebhookEndpoint"))
    missing = _error("No such endpoint")
    return {
        "/api/v1/admin/webhooks": {
            "get": {
                "summary": "Webhook endpoints",
                "security": BEARER,
                "responses": {
                    "200": _answer(
                        "Endpoints", {"type": "array", "items": _ref("WebhookEndpoint")}
                    ),
                    **_AUTH_ERRORS,
                },
            },
            "post": {
                "summary": "Add a webhook endpoint (url, event_types required); the answer "
                "holds its signing secret, shown this once",
                "security": BEARER,
                "requestBody": _NEW,
                "responses": {
                    "201": _answer("Created, with its secret", _ref("WebhookEndpoint")),
                    "400": _error("Refused (a private address, an unknown event type, …)"),
                    **_AUTH_ERRORS,
                },
            },
        },
        "/api/v1/admin/webhooks/{endpoint_id}": {
            "get": {
                "summary": "One webhook endpoint",
                "security": BEARER,
                "parameters": [_id("endpoint_id")],
                "responses": {"200": endpoint, "404": missing, **_AUTH_ERRORS},
            },
            "patch": {
                "summary": "Change an endpoint (fields left out keep their values); enabling a "
                "disabled one starts its failure count anew",
                "security": BEARER,
                "parameters": [_id("endpoint_id")],
                "requestBody": _CHANGE,
                "responses": {
                    "200": endpoint,
                    "400": _error("Refused; nothing changed"),
                    "404": missing,
                    **_AUTH_ERRORS,
                },
            },
            "delete": {
                "summary": "Remove an endpoint and its delivery log",
                "security": BEARER,
                "parameters": [_id("endpoint_id")],
                "responses": {"204": _answer("Removed"), "404": missing, **_AUTH_ERRORS},
            },
        },
        "/api/v1/admin/webhooks/{endpoint_id}/secret": {
            "post": {
                "summary": "Rotate the signing secret (the old one stops at once)",
                "security": BEARER,
                "parameters": [_id("endpoint_id")],
                "responses": {
                    "200": _answer(
                        "The new secret, shown this once",
                        {"type": "object", "properties": {"secret": {"type": "string"}}},
                    ),
                    "404": missing,
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/v1/admin/webhooks/{endpoint_id}/test": {
            "post": {
                "summary": "Send a ping event to this endpoint (the worker sends it)",
                "security": BEARER,
                "parameters": [_id("endpoint_id")],
                "responses": {
                    "202": _answer(
                        "Queued",
                        {
                            "type": "object",
                            "properties": {
                                "event_id": {"type": "string"},
                                "type": {"type": "string"},
                            },
                        },
                    ),
                    "404": missing,
                    "409": _error("The endpoint is disabled"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/v1/admin/webhooks/{endpoint_id}/deliveries": {
            "get": {
                "summary": "The delivery log of an endpoint, newest first",
                "security": BEARER,
                "parameters": [
                    _id("endpoint_id"),
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "description": "Only deliveries older than this id (the next page)",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": _answer(
                        "Deliveries", {"type": "array", "items": _ref("WebhookDelivery")}
                    ),
                    "404": missing,
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/v1/admin/webhooks/deliveries/{delivery_id}/redeliver": {
            "post": {
                "summary": "Send a delivery again now, with the same event id",
                "security": BEARER,
                "parameters": [_id("delivery_id")],
                "responses": {
                    "202": _answer("Queued", _ref("WebhookDelivery")),
                    "404": _error("No such delivery"),
                    "409": _error("The endpoint is disabled, or the delivery is being sent"),
                    **_AUTH_ERRORS,
                },
            }
        },
    }
