"""The OpenAPI 3.1 description of the HTTP API, served at /api/v1/openapi.json.

Built as data here so that it stays next to the code it describes; the schemathesis run in the
test suite holds the real endpoints to it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    PLATFORM_RE,
    SLUG_RE,
    ApplyOutcome,
    EmailKind,
    EmailState,
    ReleaseKind,
    ReleaseState,
    Severity,
    values,
)
from server.web import openapi_webhooks

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


NULLABLE_STRING = {"type": ["string", "null"]}


def _one_of(enum: type[StrEnum], *, nullable: bool = False) -> dict[str, Any]:
    """A closed set of the vocabulary as a schema: the strings it allows (and null)."""
    if nullable:
        return {"type": ["string", "null"], "enum": [*values(enum), None]}
    return {"type": "string", "enum": values(enum)}


def _json_pattern(regex: re.Pattern[str]) -> str:
    """A Python ``\\A...\\Z`` pattern as a JSON Schema (ECMA) ``^...$`` pattern."""
    return "^" + regex.pattern.removeprefix("\\A").removesuffix("\\Z") + "$"


# Canonical PEP 440 versions (the server also accepts the non-canonical spellings PEP 440 allows).
VERSION = {
    "type": "string",
    "maxLength": 64,
    "pattern": r"^[0-9]{1,6}(\.[0-9]{1,6}){0,4}((a|b|rc)[0-9]{1,4})?(\.post[0-9]{1,4})?(\.dev[0-9]{1,4})?"
    r"(\+[a-z0-9]{1,16}(\.[a-z0-9]{1,16}){0,3})?$",
}
PLATFORM = {"type": "string", "pattern": _json_pattern(PLATFORM_RE)}
CHANNEL = {"type": "string", "pattern": _json_pattern(SLUG_RE)}
PRODUCT = {"type": "string", "pattern": _json_pattern(SLUG_RE)}
TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            }
        },
    },
    "Signature": {
        "type": "object",
        "required": ["keyid", "sig"],
        "properties": {"keyid": {"type": "string"}, "sig": {"type": "string"}},
    },
    "SignedDocument": {
        "type": "object",
        "required": ["signed", "signatures"],
        "properties": {
            "signed": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}},
            },
            "signatures": {"type": "array", "items": _ref("Signature")},
        },
    },
    "CheckRequest": {
        "type": "object",
        "required": ["product", "version", "platform", "installation_id", "nonce"],
        "properties": {
            "product": PRODUCT,
            "version": VERSION,
            "platform": PLATFORM,
            "channel": {**CHANNEL, "default": DEFAULT_CHANNEL},
            "installation_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
            "nonce": {"type": "string", "pattern": "^[0-9a-f]{16,128}$"},
            "patch_formats": {
                "type": "array",
                "maxItems": 16,
                "items": {"type": "string", "maxLength": 32},
                "description": "delta patch formats the agent reads (absent: vigor1 only)",
            },
        },
    },
    "ReportRequest": {
        "type": "object",
        "required": ["installation_id", "product", "version", "outcome"],
        "properties": {
            "installation_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
            "product": PRODUCT,
            "version": VERSION,
            "from_version": {"oneOf": [VERSION, {"type": "null"}]},
            "outcome": _one_of(ApplyOutcome),
            "code": {"type": ["string", "null"], "maxLength": 64},
            "message": {"type": ["string", "null"], "maxLength": 2000},
        },
    },
    "Release": {
        "type": "object",
        "required": ["product", "version", "kind", "status", "artifacts"],
        "properties": {
            "product": {"type": "string"},
            "version": {"type": "string"},
            "kind": _one_of(ReleaseKind),
            "severity": _one_of(Severity, nullable=True),
            "channel": {"type": "string"},
            "line": {"type": "string"},
            "status": _one_of(ReleaseState),
            "published_at": NULLABLE_STRING,
            "min_from": NULLABLE_STRING,
            "rollout_percent": {"type": "integer"},
            "artifacts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["platform", "size", "sha256"],
                    "properties": {
                        "platform": {"type": "string"},
                        "filename": {"type": "string"},
                        "size": {"type": "integer"},
                        "sha256": {"type": "string"},
                    },
                },
            },
            "manifest": {"oneOf": [_ref("SignedDocument"), {"type": "null"}]},
        },
    },
    "Email": {
        "type": "object",
        "required": ["id", "recipient", "kind", "state", "subject", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "customer": NULLABLE_STRING,
            "recipient": {"type": "string"},
            "kind": _one_of(EmailKind),
            "language": {"type": "string"},
            "subject": {"type": "string"},
            "state": _one_of(EmailState),
            "attempts": {"type": "integer"},
            "smtp_response": NULLABLE_STRING,
            "created_at": TIME,
            "sent_at": {"oneOf": [TIME, {"type": "null"}]},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "probes"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unhealthy"]},
            "database": {"type": "string", "description": "ok, or error: why"},
            "storage": {"type": "string", "description": "ok, or error: why"},
            "probes": {
                "type": "array",
                "description": "Every probe: database (and its schema revision), storage, "
                "and any other part's (the worker's); a status starting with error makes the "
                "answer 503",
                "items": {
                    "type": "object",
                    "required": ["name", "status", "seconds"],
                    "properties": {
                        "name": {"type": "string"},
                        "status": {"type": "string"},
                        "seconds": {"type": "number"},
                    },
                    "additionalProperties": True,
                },
            },
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": {"type": "string"},
        },
    },
}

LICENSE_AUTH: list[dict[str, list[str]]] = [{"license": []}]
BEARER_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _paths() -> dict[str, Any]:
    root_responses = {
        "200": _json(_ref("SignedDocument"), "Signed root metadata"),
        "404": _error("No such root version"),
    }
    license_errors = {
        "400": _error("Malformed request; the message names the field"),
        "401": _error("No license, or an unknown license key"),
        "403": _error("License suspended or revoked, wrong product, or installation cap reached"),
        "429": _error("Too many requests; see Retry-After"),
        "503": _error("The database is unavailable (code database_unavailable); see Retry-After"),
    }
    return {
        "/api/v1/root.json": {
            "get": {"summary": "Newest root metadata", "security": [], "responses": root_responses}
        },
        "/api/v1/root/{version}.json": {
            "get": {
                "summary": "Root metadata version N (agents walk the chain)",
                "security": [],
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": root_responses,
            }
        },
        "/api/v1/check": {
            "post": {
                "summary": "Update check: entitlement, best offer, renewal prompt, notices (signed)",
                "security": LICENSE_AUTH,
                "parameters": [
                    {
                        "name": "Accept-Language",
                        "in": "header",
                        "required": False,
                        "description": "Language of the messages, unless the customer has one set",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("CheckRequest")}},
                },
                "responses": {
                    "200": _json(_ref("SignedDocument"), "Signed check response"),
                    **license_errors,
                },
            }
        },
        "/api/v1/download/{token}": {
            "get": {
                "summary": "Download an artifact with a link from a check (Range supported), "
                "presented with the license it was handed to",
                "security": LICENSE_AUTH,
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "The artifact's bytes",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "206": {
                        "description": "A byte range",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "302": {"description": "Redirect to a presigned storage URL (S3)"},
                    "304": {"description": "Not modified"},
                    "403": _error(
                        "Invalid link, presented without its license (download_license_required) "
                        "or with another (download_wrong_license), or the license is no longer "
                        "entitled"
                    ),
                    "404": _error("The artifact no longer exists"),
                    "410": _error("The link expired; check again for a fresh one"),
                    "416": {"description": "Range not satisfiable"},
                },
            }
        },
        "/api/v1/report": {
            "post": {
                "summary": "Report the outcome of applying a release",
                "security": LICENSE_AUTH,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("ReportRequest")}},
                },
                "responses": {
                    "202": _json(
                        {"type": "object", "properties": {"recorded": {"type": "boolean"}}},
                        "Recorded",
                    ),
                    "404": _error("Unknown product or version"),
                    **license_errors,
                },
            }
        },
        "/api/v1/admin/releases": {
            "post": {
                "summary": "Publish a release (multipart; one artifact.<platform> file per platform)",
                "security": BEARER_AUTH,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["product", "version", "kind"],
                                "properties": {
                                    "product": {"type": "string"},
                                    "version": {"type": "string"},
                                    "kind": _one_of(ReleaseKind),
                                    "severity": {
                                        "type": "string",
                                        "enum": ["", *values(Severity)],
                                        "description": "Required for a security revision; "
                                        "empty or absent for none",
                                    },
                                    "channel": {"type": "string", "default": DEFAULT_CHANNEL},
                                    "notes": {"type": "string"},
                                    "min_from": {"type": "string"},
                                    "line": {"type": "string"},
                                    "published_at": {"type": "string"},
                                    "draft": {"type": "string"},
                                    "customers": {"type": "string"},
                                },
                                "additionalProperties": {"type": "string", "format": "binary"},
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(_ref("Release"), "Published (or saved as a draft)"),
                    "400": _error("Refused; the message names the field"),
                    "401": _error("Missing or unknown token"),
                    "403": _error("The token's role may not publish"),
                    "409": _error("That version exists"),
                    "413": _error("An artifact is over the size limit"),
                    "415": _error("Not multipart/form-data"),
                    "503": _error("Storage or signing unavailable; nothing was published"),
                },
            }
        },
        "/api/v1/admin/releases/{product}": {
            "get": {
                "summary": "A product's releases, oldest first",
                "security": BEARER_AUTH,
                "parameters": [
                    {
                        "name": "product",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Release")}, "Releases"),
                    "401": _error("Missing or unknown token"),
                    "404": _error("No such product"),
                },
            }
        },
        "/api/v1/admin/emails": {
            "get": {
                "summary": "The newest e-mails: to whom, what, and whether the SMTP server "
                "accepted them",
                "security": BEARER_AUTH,
                "parameters": [
                    {
                        "name": "customer",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "a customer's slug",
                    },
                    {"name": "state", "in": "query", "schema": _one_of(EmailState)},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
                "responses": {
                    "200": _json(
                        {"type": "array", "items": _ref("Email")}, "E-mails, newest first"
                    ),
                    "400": _error("A bad state or limit"),
                    "401": _error("Missing or unknown token"),
                    "404": _error("No such customer"),
                },
            }
        },
        "/api/v1/admin/emails/test": {
            "post": {
                "summary": "Queue a test e-mail (admin tokens); the worker sends it",
                "security": BEARER_AUTH,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["to"],
                                "properties": {"to": {"type": "string", "format": "email"}},
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(_ref("Email"), "Queued"),
                    "400": _error("Not an e-mail address"),
                    "401": _error("Missing or unknown token"),
                    "403": _error("The token's role may not send e-mail"),
                },
            }
        },
        "/livez": {
            "get": {
                "summary": "Liveness: the process answers (no database or storage access)",
                "security": [],
                "responses": {"200": _json(_ref("Readiness"), "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: update checks can be answered (the database answers "
                "within 2 s; storage is not part of it)",
                "security": [],
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready"),
                    "503": _json(_ref("Readiness"), "Not ready; Retry-After says when to retry"),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Every probe in detail: database and schema, storage, worker",
                "security": [],
                "responses": {
                    "200": _json(_ref("Health"), "Healthy"),
                    "503": _json(_ref("Health"), "Unhealthy"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vigor API",
            "version": "1",
            "description": "Update checks, downloads, publishing and webhooks. Wire format: "
            "docs/protocol.md; webhooks: docs/webhooks.md.",
        },
        "servers": [{"url": server_url}],
        "paths": {**_paths(), **openapi_webhooks.paths()},
        "components": {
            "schemas": {**SCHEMAS, **openapi_webhooks.SCHEMAS},
            "securitySchemes": {
                "license": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "License <key>",
                },
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
