"""The headers every response gets, and the rate limit's headers, on a bare Flask app."""

from __future__ import annotations

from flask import Flask, Response

from server.db import Database
from server.web import headers, ratelimit
from server.web.headers import SECURITY_HEADERS, STRICT_TRANSPORT_SECURITY
from server.web.ratelimit import Per, rate_limited


def make_app(public_url: str = "http://vigor.test") -> Flask:
    app = Flask(__name__)
    headers.init_app(app, public_url)
    ratelimit.init_app(app, "memory://", Database("sqlite://"))

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    @app.get("/own")
    def own() -> Response:
        return Response("own", headers=[("X-Frame-Options", "SAMEORIGIN"), ("X-Extra", "1")])

    @app.get("/limited")
    @rate_limited(Per(lambda: "5/minute"))
    def limited() -> Response:
        return Response("limited", headers=[("x-ratelimit-limit", "999"), ("X-Extra", "1")])

    @app.get("/counted")
    @rate_limited(Per(lambda: "5/minute"))
    def counted() -> tuple[str, int]:
        return "counted", 202

    return app


def test_every_response_gets_the_security_headers_once() -> None:
    response = make_app().test_client().get("/plain")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.getlist(name) == [value], name
    assert "Strict-Transport-Security" not in response.headers


def test_a_header_the_view_set_is_kept_and_the_others_added() -> None:
    response = make_app("https://vigor.test").test_client().get("/own")
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["X-Extra"] == "1"
    for name, value in SECURITY_HEADERS.items():
        if name != "X-Frame-Options":
            assert response.headers.getlist(name) == [value], name
    assert response.headers["Strict-Transport-Security"] == STRICT_TRANSPORT_SECURITY


def test_the_rate_limit_s_headers_replace_any_the_view_set() -> None:
    client = make_app().test_client()
    response = client.get("/limited")
    assert response.headers.getlist("X-RateLimit-Limit") == ["5"]
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert response.headers["X-Extra"] == "1"
    response = client.get("/counted")  # a view's (body, status) is made a response first
    assert (response.status_code, response.get_data(as_text=True)) == (202, "counted")
    assert response.headers.getlist("X-RateLimit-Limit") == ["5"]
    assert response.headers["X-RateLimit-Remaining"] == "4"
