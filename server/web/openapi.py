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
    AccountState,
    ApplyOutcome,
    ContractKind,
    EmailKind,
    EmailState,
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    Maintenance,
    ReleaseKind,
    ReleaseState,
    Scope,
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
                    "scope": {"type": "string", "description": "the scope a token lacks (403)"},
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
    "StagedUpload": {
        "type": "object",
        "required": ["id", "filename", "size", "sha256", "created_at", "expires_at"],
        "properties": {
            "id": {"type": "string", "description": "Name it in a JSON publish's artifacts"},
            "filename": {"type": "string"},
            "size": {"type": "integer"},
            "sha256": {"type": "string"},
            "created_at": TIME,
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "A publish after this refuses the upload; vigor gc removes it",
            },
        },
    },
    "PublishRequest": {
        "type": "object",
        "required": ["product", "version", "kind", "artifacts"],
        "properties": {
            "product": {"type": "string"},
            "version": {"type": "string"},
            "kind": _one_of(ReleaseKind),
            "severity": {
                "type": ["string", "null"],
                "enum": ["", None, *values(Severity)],
                "description": "Required for a security revision; empty, null or absent for none",
            },
            "channel": {"type": "string", "default": DEFAULT_CHANNEL},
            "notes": {"type": "string"},
            "min_from": NULLABLE_STRING,
            "line": NULLABLE_STRING,
            "published_at": NULLABLE_STRING,
            "draft": {"type": "boolean"},
            "customers": {"type": "array", "items": {"type": "string"}},
            "artifacts": {
                "type": "object",
                "minProperties": 1,
                "description": "The id of a staged upload (POST /api/v1/admin/uploads) per "
                "platform; each upload is used once",
                "additionalProperties": {"type": "string"},
            },
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
        "/api/v1/admin/uploads": {
            "post": {
                "summary": "Stage an artifact: the request body is the file, streamed into the "
                "store; a JSON publish then names it (scope: releases:publish)",
                "security": [{"bearer": [Scope.RELEASES_PUBLISH.value]}],
                "x-scope": Scope.RELEASES_PUBLISH.value,
                "parameters": [
                    {
                        "name": "filename",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "The file name downloads get (default: "
                        "product-version-platform)",
                    },
                    {
                        "name": "sha256",
                        "in": "query",
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "description": "The body's SHA-256 (hex); a body that differs is "
                        "refused with 422 and nothing is kept",
                    },
                    {
                        "name": "Repr-Digest",
                        "in": "header",
                        "schema": {"type": "string"},
                        "description": "RFC 9530, e.g. sha-256=:<base64>: (checked like sha256)",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "201": _json(_ref("StagedUpload"), "Stored; name its id within 24 hours"),
                    "400": _error("Refused (empty, cut off, a malformed digest or filename)"),
                    "401": _error("Missing or unknown token"),
                    "403": _error("The token lacks the scope releases:publish"),
                    "411": _error("No Content-Length"),
                    "413": _error("Over the size limit (refused before the body is read)"),
                    "415": _error("Not application/octet-stream"),
                    "422": _error("The body's SHA-256 is not the one given; nothing was kept"),
                    "503": _error("Storage unavailable; nothing was kept"),
                },
            }
        },
        "/api/v1/admin/releases": {
            "post": {
                "summary": "Publish a release: JSON naming staged uploads, or a multipart form "
                "with one artifact.<platform> file per platform (scope: releases:publish)",
                "security": [{"bearer": [Scope.RELEASES_PUBLISH.value]}],
                "x-scope": Scope.RELEASES_PUBLISH.value,
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {"schema": _ref("PublishRequest")},
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
                        },
                    },
                },
                "responses": {
                    "201": _json(_ref("Release"), "Published (or saved as a draft)"),
                    "400": _error(
                        "Refused; the message names the field (artifacts.<platform> for an "
                        "upload that is unknown, another token's, expired or used)"
                    ),
                    "401": _error("Missing or unknown token"),
                    "403": _error("The token lacks the scope releases:publish"),
                    "409": _error("That version exists"),
                    "413": _error("An artifact is over the size limit"),
                    "415": _error("Neither JSON nor multipart/form-data"),
                    "503": _error("Storage or signing unavailable; nothing was published"),
                },
            }
        },
        "/api/v1/admin/releases/{product}": {
            "get": {
                "summary": "A product's releases, oldest first (scope: releases:read)",
                "security": [{"bearer": [Scope.RELEASES_READ.value]}],
                "x-scope": Scope.RELEASES_READ.value,
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
                    "403": _error("The token lacks the scope releases:read"),
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
                    "403": _error("The token lacks the scope notifications:write"),
                },
            }
        },
        **admin_paths(),
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


# --- the admin API v1 (server/web/admin_api.py, docs/admin-api.md) -----------------------------

MAX_ID = 2**31 - 1  # a database id (server/web/converters.py): above it, no route matches
DATE = {"type": "string", "format": "date"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ADMIN_SCHEMAS: dict[str, Any] = {
    "Product": {
        "type": "object",
        "required": ["slug", "name", "lapse_policy", "lines"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "lapse_policy": _one_of(LapsePolicy),
            "grace_days": {"type": "integer"},
            "security_carveout_months": {"type": "integer"},
            "expiring_window_days": {"type": "integer"},
            "timezone": {"type": "string"},
            "renewal_url": NULLABLE_STRING,
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "status"],
                    "properties": {"name": {"type": "string"}, "status": _one_of(LineStatus)},
                },
            },
        },
    },
    "Customer": {
        "type": "object",
        "required": ["slug", "name", "contact_emails", "language", "notes", "maintenance"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "contact_emails": {"type": "array", "items": {"type": "string"}},
            "language": {"type": "string"},
            "notes": {"type": "string"},
            "created_at": NULLABLE_TIME,
            "maintenance": {
                "type": "array",
                "description": "the status for each product the customer holds a license for",
                "items": {
                    "type": "object",
                    "required": ["product", "status"],
                    "properties": {
                        "product": {"type": "string"},
                        "status": _one_of(Maintenance),
                        "ends_on": NULLABLE_DATE,
                    },
                },
            },
        },
    },
    "Contract": {
        "type": "object",
        "required": ["id", "customer", "kind", "product", "starts_on", "ends_on"],
        "properties": {
            "id": {"type": "integer"},
            "customer": {"type": "string"},
            "kind": _one_of(ContractKind),
            "product": {**NULLABLE_STRING, "description": "null: every product"},
            "starts_on": DATE,
            "ends_on": {**DATE, "description": "the last covered day"},
            "note": {"type": "string"},
            "created_at": NULLABLE_TIME,
        },
    },
    "License": {
        "type": "object",
        "required": ["id", "customer", "product", "key_prefix", "status"],
        "properties": {
            "id": {"type": "integer"},
            "customer": {"type": "string"},
            "product": {"type": "string"},
            "key_prefix": {"type": "string"},
            "key": {"type": "string", "description": "only in the answer to issuing it"},
            "label": {"type": "string"},
            "status": _one_of(LicenseStatus),
            "max_installations": {"type": ["integer", "null"]},
            "created_at": NULLABLE_TIME,
            "status_changed_at": NULLABLE_TIME,
        },
    },
    "PortalUser": {
        "type": "object",
        "required": ["id", "customer", "email", "state"],
        "properties": {
            "id": {"type": "integer"},
            "customer": {"type": "string"},
            "email": {"type": "string"},
            "state": _one_of(AccountState),
            "created_at": NULLABLE_TIME,
            "last_login_at": NULLABLE_TIME,
            "set_password_link": {
                "type": "string",
                "description": "only in the answer to inviting them: hand it to the person",
            },
        },
    },
    "Installation": {
        "type": "object",
        "required": ["id", "uid", "customer", "product", "version", "last_seen"],
        "properties": {
            "id": {"type": "integer"},
            "uid": {"type": "string"},
            "customer": {"type": "string"},
            "product": {"type": "string"},
            "license": {"type": "string", "description": "the license's key prefix"},
            "version": {"type": "string"},
            "platform": {"type": "string"},
            "channel": {"type": "string"},
            "first_seen": NULLABLE_TIME,
            "last_seen": NULLABLE_TIME,
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "at", "actor", "action", "target", "details"],
        "properties": {
            "id": {"type": "integer"},
            "at": NULLABLE_TIME,
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "details": {"type": "object"},
        },
    },
}


def _list_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "next": {
                **NULLABLE_STRING,
                "description": "the cursor of the next page (pass as ?cursor=); null on the last",
            },
        },
    }


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


PAGING = [
    _query(
        "limit", "page size (default 50, at most 200)", type="integer", minimum=1, maximum=MAX_ID
    ),
    _query("cursor", "the `next` of the previous page"),
]
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a retry with the same key (same token, same request) gets the first "
    "answer again, for at least 24 hours; the same key with another request is 422",
    "schema": {"type": "string", "maxLength": 255},
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "the ETag of your last read: 412 if it changed since",
    "schema": {"type": "string"},
}


NOTIFICATION_PATHS = ("/api/v1/admin/emails", "/api/v1/admin/webhooks")


def _notification_scopes(paths: dict[str, Any]) -> dict[str, Any]:
    """The scopes of the e-mail and webhook operations, as the admin API's name theirs: reading
    needs ``notifications:read``, anything else ``notifications:write``."""
    for path, operations in paths.items():
        if not path.startswith(NOTIFICATION_PATHS):
            continue
        for method, operation in operations.items():
            scope = Scope.NOTIFICATIONS_READ if method == "get" else Scope.NOTIFICATIONS_WRITE
            operation["security"] = [{"bearer": [scope.value]}]
            operation["x-scope"] = scope.value
            operation["responses"]["403"] = _error(f"The token lacks the scope {scope}")
    return paths


def _admin_op(
    scope: Scope,
    summary: str,
    answer: tuple[str, dict[str, Any], str],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    etag: bool = False,
) -> dict[str, Any]:
    status, schema, description = answer
    response = _json(schema, description)
    if etag:
        response["headers"] = {"ETag": {"schema": {"type": "string"}}}
    operation: dict[str, Any] = {
        "summary": f"{summary} (scope: {scope})",
        "security": [{"bearer": [scope.value]}],
        "x-scope": scope.value,
        "parameters": parameters or [],
        "responses": {
            status: response,
            "400": _error("Invalid input; `field` names it"),
            "401": _error("Missing, unknown, revoked or expired token"),
            "403": _error("The token lacks the scope; `scope` names it"),
            **{code: _error(text) for code, text in (errors or {}).items()},
            "503": _error("The database is unavailable; see Retry-After"),
        },
    }
    if IDEMPOTENCY_KEY in operation["parameters"]:
        operation["responses"].setdefault("409", _error("The Idempotency-Key is in use"))
        operation["responses"]["422"] = _error("The Idempotency-Key was used with another request")
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {JSON: {"schema": body}}}
        operation["responses"]["415"] = _error("The body is not application/json")
    return operation


def _object(*required: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


WRITE_ERRORS = {
    "404": "No such thing",
    "409": "It exists already, contradicts its state, or the Idempotency-Key is in use",
    "412": "If-Match is stale: read it again",
    "422": "The Idempotency-Key was used with another request",
}


def admin_paths() -> dict[str, Any]:
    """Every operation of the admin API v1, with the scope it needs."""
    read, write = Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE
    not_found = {"404": "No such thing"}
    post = [IDEMPOTENCY_KEY]
    change = [IDEMPOTENCY_KEY, IF_MATCH]
    customer_body = _object(
        slug=PRODUCT,
        name={"type": "string"},
        contact_emails={"type": "array", "items": {"type": "string"}, "maxItems": 20},
        language={"type": "string"},
        notes={"type": "string"},
    )
    return {
        "/api/v1/admin/products": {
            "get": _admin_op(
                Scope.PRODUCTS_READ, "Products and their lines", ("200", _list_of("Product"), "All")
            ),
            "post": _admin_op(
                Scope.PRODUCTS_WRITE,
                "Add a product",
                ("201", _ref("Product"), "Added"),
                parameters=post,
                body=_object(
                    "slug",
                    slug=PRODUCT,
                    name={"type": "string"},
                    lapse_policy=_one_of(LapsePolicy),
                    grace_days={"type": "integer", "minimum": 0},
                    security_carveout_months={"type": "integer", "minimum": 0},
                    expiring_window_days={"type": "integer", "minimum": 0},
                    timezone={"type": "string"},
                    renewal_url=NULLABLE_STRING,
                ),
                errors=WRITE_ERRORS,
            ),
        },
        "/api/v1/admin/products/{product}": {
            "get": _admin_op(
                Scope.PRODUCTS_READ,
                "A product",
                ("200", _ref("Product"), "The product"),
                parameters=[_path("product")],
                errors=not_found,
            )
        },
        "/api/v1/admin/products/{product}/lines/{line}": {
            "patch": _admin_op(
                Scope.PRODUCTS_WRITE,
                "Move a line through its lifecycle",
                ("200", _ref("Product"), "The product, its lines"),
                parameters=[_path("product"), _path("line")],
                body=_object("status", status=_one_of(LineStatus)),
                errors=not_found,
            )
        },
        "/api/v1/admin/customers": {
            "get": _admin_op(
                read,
                "Customers, by id",
                ("200", _list_of("Customer"), "A page"),
                parameters=[
                    _query(
                        "q",
                        "a name, slug or contact e-mail, or a license key or its first characters",
                    ),
                    _query(
                        "maintenance", "a status for some licensed product", **_one_of(Maintenance)
                    ),
                    _query("product", "only customers licensing this product"),
                    *PAGING,
                ],
            ),
            "post": _admin_op(
                write,
                "Add a customer",
                ("201", _ref("Customer"), "Added"),
                parameters=post,
                body={**customer_body, "required": ["slug"]},
                errors=WRITE_ERRORS,
                etag=True,
            ),
        },
        "/api/v1/admin/customers/{slug}": {
            "get": _admin_op(
                read,
                "A customer and their maintenance per product",
                ("200", _ref("Customer"), "The customer"),
                parameters=[_path("slug")],
                errors=not_found,
                etag=True,
            ),
            "patch": _admin_op(
                write,
                "Change a customer's name, contact e-mails, language or notes (the fields sent)",
                ("200", _ref("Customer"), "Changed"),
                parameters=[_path("slug"), IF_MATCH],
                body=customer_body,
                errors=WRITE_ERRORS,
                etag=True,
            ),
        },
        "/api/v1/admin/contracts": {
            "get": _admin_op(
                read,
                "Contracts, by id",
                ("200", _list_of("Contract"), "A page"),
                parameters=[
                    _query("customer", "a customer's slug"),
                    _query("product", "a product's slug"),
                    _query("kind", "maintenance or customization", **_one_of(ContractKind)),
                    _query("ends_before", "ending on or before this day", **DATE),
                    _query("ends_after", "ending on or after this day", **DATE),
                    *PAGING,
                ],
            ),
            "post": _admin_op(
                write,
                "Add a contract",
                ("201", _ref("Contract"), "Added"),
                parameters=post,
                body=_object(
                    "customer",
                    "starts_on",
                    "ends_on",
                    customer={"type": "string"},
                    product={**NULLABLE_STRING, "description": "absent: every product"},
                    kind=_one_of(ContractKind),
                    starts_on=DATE,
                    ends_on=DATE,
                    note={"type": "string"},
                ),
                errors=WRITE_ERRORS,
                etag=True,
            ),
        },
        "/api/v1/admin/contracts/{contract_id}": {
            "get": _admin_op(
                read,
                "A contract",
                ("200", _ref("Contract"), "The contract"),
                parameters=[_path("contract_id", type="integer", minimum=1, maximum=MAX_ID)],
                errors=not_found,
                etag=True,
            )
        },
        "/api/v1/admin/contracts/{contract_id}/renew": {
            "post": _admin_op(
                write,
                "Renew in one call: a new contract from the day after this one ends (or today)",
                ("201", _ref("Contract"), "The new contract"),
                parameters=[
                    _path("contract_id", type="integer", minimum=1, maximum=MAX_ID),
                    *change,
                ],
                body=_object(years={"type": "integer", "minimum": 1, "maximum": 10, "default": 1}),
                errors=WRITE_ERRORS,
                etag=True,
            )
        },
        "/api/v1/admin/contracts/{contract_id}/end": {
            "post": _admin_op(
                write,
                "End a contract early (its last covered day; today by default)",
                ("200", _ref("Contract"), "Ended"),
                parameters=[
                    _path("contract_id", type="integer", minimum=1, maximum=MAX_ID),
                    *change,
                ],
                body=_object(ends_on=DATE),
                errors=WRITE_ERRORS,
                etag=True,
            )
        },
        "/api/v1/admin/licenses": {
            "get": _admin_op(
                read,
                "Licenses, by id",
                ("200", _list_of("License"), "A page"),
                parameters=[
                    _query("customer", "a customer's slug"),
                    _query("product", "a product's slug"),
                    _query("status", "active, suspended or revoked", **_one_of(LicenseStatus)),
                    _query("prefix", "the start of the key prefix shown in lists"),
                    *PAGING,
                ],
            ),
            "post": _admin_op(
                write,
                "Issue a license: the key is in this answer only",
                ("201", _ref("License"), "Issued"),
                parameters=post,
                body=_object(
                    "customer",
                    "product",
                    customer={"type": "string"},
                    product={"type": "string"},
                    label={"type": "string"},
                    max_installations={"type": ["integer", "null"], "minimum": 1},
                ),
                errors=WRITE_ERRORS,
                etag=True,
            ),
        },
        "/api/v1/admin/licenses/lookup": {
            "post": _admin_op(
                read,
                "Find a license by its full key or its prefix (in the body, out of URLs)",
                ("200", _ref("License"), "The license"),
                parameters=post,
                body=_object("key", key={"type": "string"}),
                errors={**not_found, "409": "The prefix names several licenses"},
                etag=True,
            )
        },
        "/api/v1/admin/licenses/{license_id}": {
            "get": _admin_op(
                read,
                "A license",
                ("200", _ref("License"), "The license"),
                parameters=[_path("license_id", type="integer", minimum=1, maximum=MAX_ID)],
                errors=not_found,
                etag=True,
            ),
            "patch": _admin_op(
                write,
                "Set how many installations may use a license (null: no limit)",
                ("200", _ref("License"), "Changed"),
                parameters=[
                    _path("license_id", type="integer", minimum=1, maximum=MAX_ID),
                    IF_MATCH,
                ],
                body=_object("max_installations", max_installations={"type": ["integer", "null"]}),
                errors=WRITE_ERRORS,
                etag=True,
            ),
        },
        "/api/v1/admin/licenses/{license_id}/{action}": {
            "post": _admin_op(
                write,
                "Suspend (reversible), reactivate, or revoke (final) a license",
                ("200", _ref("License"), "Done"),
                parameters=[
                    _path("license_id", type="integer", minimum=1, maximum=MAX_ID),
                    _path("action", type="string", enum=["suspend", "reactivate", "revoke"]),
                    *change,
                ],
                errors=WRITE_ERRORS,
                etag=True,
            )
        },
        "/api/v1/admin/portal-users": {
            "get": _admin_op(
                read,
                "Portal users, by id",
                ("200", _list_of("PortalUser"), "A page"),
                parameters=[_query("customer", "a customer's slug"), *PAGING],
            ),
            "post": _admin_op(
                write,
                "Invite a portal user: the answer holds their set-password link, once",
                ("201", _ref("PortalUser"), "Invited"),
                parameters=post,
                body=_object(
                    "customer", "email", customer={"type": "string"}, email={"type": "string"}
                ),
                errors=WRITE_ERRORS,
            ),
        },
        "/api/v1/admin/portal-users/{user_id}/{action}": {
            "post": _admin_op(
                write,
                "Disable (every session ends) or enable a portal user",
                ("200", _ref("PortalUser"), "Done"),
                parameters=[
                    _path("user_id", type="integer", minimum=1, maximum=MAX_ID),
                    _path("action", type="string", enum=["disable", "enable"]),
                    *post,
                ],
                errors=WRITE_ERRORS,
            )
        },
        "/api/v1/admin/installations": {
            "get": _admin_op(
                Scope.INSTALLATIONS_READ,
                "Installations, by id",
                ("200", _list_of("Installation"), "A page"),
                parameters=[
                    _query("customer", "a customer's slug"),
                    _query("product", "a product's slug"),
                    _query("version", "the version they last reported"),
                    _query("seen_before", "last seen before this time", **TIME),
                    _query("seen_after", "last seen at or after this time", **TIME),
                    *PAGING,
                ],
            )
        },
        "/api/v1/admin/audit": {
            "get": _admin_op(
                Scope.AUDIT_READ,
                "The audit log, newest first",
                ("200", _list_of("AuditEvent"), "A page"),
                parameters=[
                    _query("action", "an action or its start (license.)"),
                    _query("actor", "who: an admin's e-mail, token:<name>, cli:<user>"),
                    _query("target", "what it was about"),
                    _query("since", "at or after this time", **TIME),
                    _query("until", "before this time", **TIME),
                    *PAGING,
                ],
            )
        },
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vigor API",
            "version": "1",
            "description": "Update checks, downloads, publishing, webhooks and the admin API "
            "(scoped bearer tokens; docs/admin-api.md). Wire format: docs/protocol.md; webhooks: "
            "docs/webhooks.md.",
        },
        "servers": [{"url": server_url}],
        "paths": _notification_scopes({**_paths(), **openapi_webhooks.paths()}),
        "components": {
            "schemas": {**SCHEMAS, **openapi_webhooks.SCHEMAS, **ADMIN_SCHEMAS},
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
