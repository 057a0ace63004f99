"""Request metrics: every answer counted by route, method and status, and timed by route; update
checks counted by outcome (server/metrics.py defines the objects).

The route is the URL rule (``/api/v1/download/<token>``), never the path a client sent, and
methods outside HTTP's usual set are counted as ``other``: no client can grow the label sets.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from flask import Flask, Response, g, request

from server.metrics import CHECKS, HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from server.web.errors import HTTP_CODES

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"  # the route of a path no rule matches (404s, probes, scanners)
CHECK_ENDPOINT = "updates.check"
NO_UPDATE = b'"update":null'  # in the canonical (compact) JSON of a check answer


def init_app(app: Flask) -> None:
    """Register first: the clock starts before any other hook and stops after every other."""
    app.before_request(_start)
    app.after_request(_count)


STARTED = "vigor.started"


def _start() -> None:
    request.environ[STARTED] = perf_counter()


# The labelled children, looked up once each: ``labels()`` takes a lock and builds a key, a
# third of this module's cost per request. Bounded like the label sets themselves; a race only
# looks the same child up twice. (The request proxy is resolved once: each use of Flask's
# ``request`` costs a context-variable lookup.)
_requests: dict[tuple[str, str, int], Any] = {}
_seconds: dict[str, Any] = {}
_checks: dict[str, Any] = {}


def _count(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]
    rule = req.url_rule
    started = req.environ.get(STARTED)
    count(
        rule.rule if rule is not None else UNMATCHED,
        req.method,
        response.status_code,
        perf_counter() - started if started is not None else None,
        check_outcome(response) if rule is not None and rule.endpoint == CHECK_ENDPOINT else None,
    )
    return response


def count(route: str, method: str, status: int, seconds: float | None, outcome: str | None) -> None:
    """Count one answer: by ``route`` (a URL rule), method and status; timed by route when
    ``seconds`` is known; ``outcome``: an update check's (:func:`check_outcome`)."""
    method = method if method in METHODS else "other"
    key = (route, method, status)
    counter = _requests.get(key)
    if counter is None:
        counter = _requests[key] = HTTP_REQUESTS.labels(route, method, str(status))
    counter.inc()
    if seconds is not None:
        timer = _seconds.get(route)
        if timer is None:
            timer = _seconds[route] = HTTP_REQUEST_SECONDS.labels(route)
        timer.observe(seconds)
    if outcome is not None:
        checks = _checks.get(outcome)
        if checks is None:
            checks = _checks[outcome] = CHECKS.labels(outcome)
        checks.inc()


OUTCOME = "vigor.check_outcome"


def answered(document: bytes) -> None:
    """Called by the check view with the answer it sends: whether it offered an update."""
    request.environ[OUTCOME] = answered_outcome(document)


def answered_outcome(document: bytes) -> str:
    """A check answer's outcome: ``update`` (one offered) or ``no_update``."""
    return "no_update" if NO_UPDATE in document else "update"


def check_outcome(response: Response) -> str:
    """``update`` (one offered), ``no_update``, or the error code the refusal carried."""
    status = response.status_code
    if status == 200:
        return str(request.environ.get(OUTCOME, "update"))
    code = g.get("vigor_error_code")
    return str(code) if code else HTTP_CODES.get(status, str(status))
