"""The update check, answered in front of Flask's request machinery.

Every installation calls ``POST /api/v1/check`` on a timer, so it is nearly all of a vendor's
traffic. Through Flask the answer costs about twice what the check itself does: a request
context, the before/after hooks of every area of the site, a ``Response`` object, and the
wrapping of the view (bench/check_profile.py: ~740 µs of CPU per check, ~310 µs of it the
request machinery). :class:`FastCheck` is a WSGI middleware that answers the ordinary check
itself and passes every other request, untouched, to Flask.

What it answers is what the Flask view (``server.web.updates.check``) answers, from the same
parts: the same service call (:func:`~server.web.updates.respond_to_check`), the same
per-license and per-address counters (:func:`~server.web.updates.check_counted`, the view's
scope), the same headers (content type, ``Cache-Control``, ``X-RateLimit-*``, the security
headers) and the same metrics (:func:`~server.web.instrument.count`). A refusal of any kind —
a bad key, a bad body, a limit, the database down, a bug — is handed to Flask's error handlers
inside a request context for this request, so its status, JSON body, headers, log line and
metrics are exactly the view's (tests/functional/test_fast_check.py compares the two).

It leaves to the view whatever is not the plain case: another method or path, a query string,
a body that is not ``application/json``, chunked or larger than the limit, a non-ASCII script
root. The view handles those exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import parse_accept_header

from server.web import instrument, ratelimit
from server.web.updates import (
    CHECK_HEADERS,
    CHECK_PATH,
    check,
    check_counted,
    json_or_none,
    license_key,
    respond_to_check,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from server.services import Services

JSON = "application/json"
WHERE = f"POST {CHECK_PATH}"  # names the check in log lines, as Flask's hooks do


class FastCheck:
    """Answers ``POST /api/v1/check`` before ``app`` (a Flask app) sees it; passes the rest to
    ``wrapped``, the app's WSGI callable (``app.wsgi_app`` as it was)."""

    def __init__(
        self,
        app: Flask,
        services: Services,
        wrapped: WSGIApplication,
        security: Sequence[tuple[str, str]],
    ) -> None:
        """``security``: the security headers every answer of ``app`` carries."""
        self.app = app
        self.wrapped = wrapped
        self.services = services
        self.scope = ratelimit.scope_of(check)  # the view's counters: both paths count alike
        self.headers = (*CHECK_HEADERS, *security)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self.handles(environ):
            return self.wrapped(environ, start_response)
        return self._answer(environ, start_response)

    def handles(self, environ: WSGIEnvironment) -> bool:
        """Whether this is a plain check (else the Flask view answers it)."""
        length = environ.get("CONTENT_LENGTH", "")
        return (
            environ.get("PATH_INFO") == CHECK_PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("QUERY_STRING")
            and environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() == JSON
            and length.isascii()
            and length.isdigit()
            and _within(int(length), self.app.config["MAX_CONTENT_LENGTH"])  # else the view's 413
            and "HTTP_TRANSFER_ENCODING" not in environ
            and environ.get("SCRIPT_NAME", "").isascii()
        )

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = perf_counter()
        session: Session | None = None

        def sessions() -> Session:
            nonlocal session
            if session is None:
                session = self.services.db.sessions()
            return session

        try:
            key = license_key(environ.get("HTTP_AUTHORIZATION", ""))
            limits = ratelimit.hit(
                self.app.extensions[ratelimit.EXTENSION].batched,
                self.scope,
                check_counted(self.services.settings, key, environ.get("REMOTE_ADDR")),
                endpoint=instrument.CHECK_ENDPOINT,
                where=WHERE,
            )
            document = respond_to_check(
                self.services,
                key,
                _json_body(environ),
                sessions=sessions,
                script_root=environ.get("SCRIPT_NAME", "").rstrip("/"),
                accept_language=parse_accept_header(
                    environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept
                ),
            )
        except Exception as error:  # noqa: BLE001 - every refusal goes to Flask's handlers
            return self._refused(environ, start_response, error, started)
        finally:
            if session is not None:
                session.close()
        headers = [
            ("Content-Length", str(len(document))),
            *self.headers,
            *limits.items(),
        ]
        instrument.count(
            CHECK_PATH, "POST", 200, perf_counter() - started, instrument.answered_outcome(document)
        )
        start_response("200 OK", headers)
        return [document]

    def _refused(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        error: Exception,
        started: float,
    ) -> Iterable[bytes]:
        """The answer Flask gives when the view raises ``error``: its error handler, then the
        after-request hooks (metrics, security headers), in a request context for this request.
        Called while ``error`` is being handled, so that a logged traceback is this one."""
        app = self.app
        environ[instrument.STARTED] = started  # the request's latency counts from here
        with app.request_context(environ):
            try:
                response = app.finalize_request(
                    app.handle_user_exception(error), from_error_handler=True
                )
            except Exception as failure:  # noqa: BLE001 - a handler failed: Flask's last resort
                response = app.handle_exception(failure)
            return response(environ, start_response)


def _within(length: int, limit: int | None) -> bool:
    return limit is None or length <= limit


def _json_body(environ: WSGIEnvironment) -> Any:
    """The body as JSON, None when it is not JSON (as ``request.get_json(silent=True)``).

    Raises:
        ClientDisconnected: the body ended before its ``Content-Length`` (a 400, as Flask's).
    """
    length = int(environ["CONTENT_LENGTH"])
    data = environ["wsgi.input"].read(length) if length else b""
    if len(data) < length:
        raise ClientDisconnected()
    return json_or_none(data)
