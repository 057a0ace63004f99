"""One place maps errors to HTTP: JSON ``{"error": {"code", "message"}}`` with the right status
for the API (``/api/…``, the health endpoints and any client that asks for JSON), and for a
browser the site's own error page (``error.html``) in the visitor's language, with the same
status. A 500 never shows internals on either: the traceback goes to the log."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
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
from server.web.i18n import current_language
from server.web.i18n import gettext as _
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


# What a browser's visitor reads for each status: a title and a sentence, in English here and
# translated through the catalogues (`make messages` finds them: babel.cfg lists this file).
def _page_text(status: int, retry_after: str | None) -> tuple[str, str]:
    if status == 400:
        return _("Something in the request was wrong"), _(
            "The page could not use what was sent. Go back, check the form and try again."
        )
    if status == 401:
        return _("Sign in first"), _("This page is for people who are signed in.")
    if status == 403:
        return _("Not allowed"), _("Your account may not open this page or do this.")
    if status == 404:
        return _("Page not found"), _(
            "There is nothing at this address. Check the link, or start again from the home page."
        )
    if status == 405:
        return _("Not possible here"), _("This address does not accept this kind of request.")
    if status == 409:
        return _("Changed in the meantime"), _(
            "This was changed by someone else at the same moment; reload the page and try again."
        )
    if status == 410:
        return _("No longer available"), _("This link has expired or was used already.")
    if status == 413:
        return _("Too large"), _("What was sent is larger than this server accepts.")
    if status == 429:
        if retry_after and retry_after.isdigit():
            return _("Too many requests"), _(
                "Wait {seconds} seconds and try again.", seconds=int(retry_after)
            )
        return _("Too many requests"), _("Wait a moment and try again.")
    if status == 503:
        return _("Briefly unavailable"), _(
            "The service is unavailable for a moment; try again shortly."
        )
    return _("Something went wrong"), _(
        "The server could not answer; the error was logged. Try again, and tell your "
        "administrator if it happens again."
    )


def error_page(
    status: int, detail: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The site's error page for ``status`` in the visitor's language; ``detail`` is a sentence
    about this very case (a domain message, a refused form), never an exception's internals."""
    headers = dict(headers or {})
    title, message = _page_text(status, headers.get("Retry-After"))
    g.vigor_error_code = HTTP_CODES.get(status, "internal_error" if status >= 500 else "error")
    home = "/admin/" if request.path.startswith("/admin") else "/portal/"
    try:
        body = render_template(
            "error.html",
            status=status,
            title=title,
            message=message,
            detail=detail,
            home=home,
            lang=current_language(),
        )
    except Exception:  # the page needs the database (who is signed in) and it may be down
        log.exception("the error page failed on %s %s", request.method, redact(request.path))
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    response = make_response(body, status)
    response.headers.update(headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        if not wants_json():
            extra = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status_for(error) == 503 else {}
            return error_page(status_for(error), error.message, extra)
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
        if not wants_json():
            return error_page(503, None, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        response = error_response(
            503, StorageUnavailableError.code, f"the artifact store is unavailable: {error}"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response | HTTPException:
        status = error.code or 500
        if not wants_json():
            kept = {
                name: value
                for name, value in error.get_headers()
                if name in {"Retry-After", "WWW-Authenticate", "Allow"}
            }
            detail = None
            if isinstance(error, CSRFError):
                detail = _(
                    "The form expired or did not come from this site; reload it and try again."
                )
            elif error.description != type(error).description:
                detail = error.description  # the view's own sentence (abort(400, "…"))
            return error_page(status, detail, kept)
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
        if not wants_json():
            return error_page(500)
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
