"""One place maps errors to HTTP: JSON ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import Conflict, HTTPException, ServiceUnavailable

from server.db import is_outage
from server.domain.errors import (
    ConflictError,
    DomainError,
    DownloadExpiredError,
    DownloadInvalidError,
    InstallationLimitError,
    InvalidInputError,
    InvitationExpiredError,
    InvitationInvalidError,
    LicenseMissingError,
    LicenseRevokedError,
    LicenseSuspendedError,
    LicenseUnknownError,
    NotEntitledError,
    NotFoundError,
    SigningError,
    SignInRefusedError,
    StorageUnavailableError,
    WrongProductError,
)
from server.domain.idempotency import KeyReusedError
from server.storage.base import StorageError
from server.web.redaction import redact

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InvalidInputError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    StorageUnavailableError: 503,
    SigningError: 503,
    LicenseMissingError: 401,
    LicenseUnknownError: 401,
    LicenseSuspendedError: 403,
    LicenseRevokedError: 403,
    WrongProductError: 403,
    InstallationLimitError: 403,
    NotEntitledError: 403,
    DownloadInvalidError: 403,
    DownloadExpiredError: 410,
    SignInRefusedError: 401,
    InvitationInvalidError: 400,
    InvitationExpiredError: 410,
    KeyReusedError: 422,
}

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    503: "unavailable",
}


# Seconds a client is asked to wait before retrying after a 503 (the store or the signer was
# unavailable: an outage of a dependency, usually over within a minute or two).
RETRY_AFTER_SECONDS = 30

DATABASE_RETRY_AFTER = 5
"""Seconds a client is asked to wait (``Retry-After``) when the database is unavailable: a
PostgreSQL restart or fail-over takes a few seconds, and the pool reconnects by itself."""

DATABASE_UNAVAILABLE = "database_unavailable"


def status_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_response(status: int, code: str, message: str, **extra: object) -> Response:
    body: dict[str, object] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify({"error": body})
    response.status_code = status
    g.vigor_error_code = code  # what the request metrics name a refusal by
    return response


PLAIN_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})


def wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path in PLAIN_PATHS
        or (request.accept_mimetypes.best == "application/json")
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        response = error_response(
            status_for(error), error.code, error.message, field=error.context.get("field")
        )
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'License realm="vigor"'
        if response.status_code == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(StorageError)
    def _storage(error: StorageError) -> Response:
        # Any storage failure a view did not turn into something better, on any route: one code.
        log.warning("storage failed on %s %s: %s", request.method, redact(request.path), error)
        response = error_response(
            503, StorageUnavailableError.code, f"the artifact store is unavailable: {error}"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response | HTTPException:
        if not wants_json():
            return error
        status = error.code or 500
        response = error_response(status, HTTP_CODES.get(status, "error"), error.description or "")
        for name, value in error.get_headers():
            if name in {"Retry-After", "WWW-Authenticate", "Allow"}:
                response.headers[name] = value
        return response

    @app.errorhandler(IntegrityError)
    def _same_moment(error: IntegrityError) -> Response | HTTPException:
        # Views check for duplicates before writing, so a constraint fails only when two
        # requests add the same thing at the same moment; the session is rolled back at teardown.
        log.warning(
            "constraint failed on %s %s: %s", request.method, redact(request.path), error.orig
        )
        return _http(
            Conflict("this was changed by another request at the same moment; reload and retry")
        )

    @app.errorhandler(SQLAlchemyError)
    def _database(error: SQLAlchemyError) -> Response | HTTPException:
        if not is_outage(error):
            return _unexpected(error)
        log.error(
            "database unavailable on %s %s: %s",
            request.method,
            redact(request.path),
            type(getattr(error, "orig", None) or error).__name__,
        )
        return database_unavailable()

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, redact(request.path))
        return error_response(500, "internal_error", "the server failed; the error was logged")


def database_unavailable() -> Response | HTTPException:
    """503 with ``Retry-After``: JSON ``database_unavailable`` for the API (and any client that
    asks for JSON), the site's short error page for a browser."""
    message = "the database is unavailable; try again shortly"
    if not wants_json():
        return ServiceUnavailable(message, retry_after=DATABASE_RETRY_AFTER)
    response = error_response(503, DATABASE_UNAVAILABLE, message)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response
