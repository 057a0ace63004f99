"""Request metrics: every answer counted by route, method and status, and timed by route; update
checks counted by outcome (server/metrics.py defines the objects).

The route is the URL rule (``/api/v1/download/<token>``), never the path a client sent, and
methods outside HTTP's usual set are counted as ``other``: no client can grow the label sets.
"""

from __future__ import annotations

from time import perf_counter

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


def _start() -> None:
    g.vigor_started = perf_counter()


def _count(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "other"
    HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
    started = g.get("vigor_started")
    if started is not None:
        HTTP_REQUEST_SECONDS.labels(route).observe(perf_counter() - started)
    if request.endpoint == CHECK_ENDPOINT:
        CHECKS.labels(check_outcome(response)).inc()
    return response


def check_outcome(response: Response) -> str:
    """``update`` (one offered), ``no_update``, or the error code the refusal carried."""
    status = response.status_code
    if status == 200:
        return "no_update" if NO_UPDATE in response.get_data() else "update"
    code = g.get("vigor_error_code")
    return str(code) if code else HTTP_CODES.get(status, str(status))
