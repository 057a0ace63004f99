"""The update check answered in front of Flask (server/web/fast_check.py) answers what the Flask
view answers: the same statuses, headers, bodies, counters, metrics and log lines, for answers
and for every kind of refusal. A check with a query string still goes through the view, which
is how each case below is sent both ways."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient

from server.config import Settings
from server.domain import customers
from server.domain.trust import verify_role, verify_root
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.functional.test_check import ago, days

VIA_VIEW = "?via=view"  # a query string: the fast path leaves the check to the Flask view


@pytest.fixture
def keys(services: Services, tmp_path: Path) -> dict[str, str]:
    make_product(services)
    make_release(services, tmp_path, "1.0.0", kind="version", published_at=ago(300))
    make_release(services, tmp_path, "1.1.0", published_at=ago(20))
    make_customer(services, "active", ("maintenance", days(-300), days(200)))
    make_customer(services, "lapsed", ("maintenance", days(-500), days(-100)))
    make_customer(services, "revoked", ("maintenance", days(-300), days(200)))
    made = {name: make_license(services, name) for name in ("active", "lapsed", "revoked")}
    with services.db.sessions() as s:
        customers.set_license_status(
            s, customers.find_license(s, made["revoked"]), "revoked", actor="t"
        )
    return made


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "product": "acme-erp",
        "version": "1.0.0",
        "platform": "linux-x86_64",
        "channel": "stable",
        "installation_id": "installation-fast-0001",
        "nonce": "0123456789abcdef0123456789abcdef",
        **overrides,
    }


def post(client: FlaskClient, key: str | None, data: bytes | None, via: str = "", **kw: Any) -> Any:
    headers = {"Authorization": f"License {key}"} if key else {}
    return client.post(
        "/api/v1/check" + via,
        data=json.dumps(body()).encode() if data is None else data,
        headers={**headers, **kw.pop("headers", {})},
        content_type=kw.pop("content_type", "application/json"),
        **kw,
    )


@pytest.fixture
def flask_requests(app: Flask) -> Iterator[list[str]]:
    """The paths of the requests Flask's request machinery handled (its ``request_started``)."""
    seen: list[str] = []

    def started(_sender: Flask, **_extra: Any) -> None:
        from flask import request

        seen.append(request.full_path)

    request_started.connect(started, app)
    yield seen
    request_started.disconnect(started, app)


def test_a_plain_check_never_enters_flask_and_verifies(
    client: FlaskClient, keys: dict[str, str], flask_requests: list[str]
) -> None:
    response = post(client, keys["active"], None)
    assert response.status_code == 200
    assert flask_requests == [], "answered before Flask's request machinery"
    root = verify_root(client.get("/api/v1/root.json").get_json(), None)
    document = response.get_json()
    verify_role(document, root, "check", "check")
    assert document["signed"]["update"]["version"] == "1.1.0"
    flask_requests.clear()
    assert post(client, keys["active"], None, VIA_VIEW).status_code == 200
    assert flask_requests == ["/api/v1/check?via=view"]


VOLATILE_HEADERS = {"Content-Length", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}


def comparable(response: Any) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body, without what differs between two answers a moment apart:
    times, download tokens, signatures, counts left."""
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    text = response.get_data(as_text=True)
    text = re.sub(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', '"<time>"', text)
    text = re.sub(r"/api/v1/download/[A-Za-z0-9_.\-]+", "/api/v1/download/<token>", text)
    text = re.sub(r'"sig":"[0-9a-f]+"', '"sig":"<sig>"', text)
    return response.status_code, headers, json.loads(text)


CASES: dict[str, tuple[str | None, bytes | None, dict[str, Any]]] = {
    # case: (license, body (None: a good one), other request options)
    "update offered": ("active", None, {}),
    "lapsed, renewal shown": ("lapsed", None, {}),
    "in another language": ("lapsed", None, {"headers": {"Accept-Language": "de, en;q=0.5"}}),
    "no key": (None, None, {}),
    "unknown key": ("vgl_" + "x" * 40, None, {}),
    "revoked license": ("revoked", None, {}),
    "a bad field": ("active", json.dumps(body(version="not a version")).encode(), {}),
    "wrong product": ("active", json.dumps(body(product="other")).encode(), {}),
    "not JSON": ("active", b"{not json", {}),
    "not an object": ("active", b"[1, 2]", {}),
    "nested past the parser's depth": ("active", b"[" * 100_000, {}),
    "not UTF-8": ("active", b'{"product": "\xff"}', {}),
    "empty": ("active", b"", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_paths_answer_alike(
    client: FlaskClient, keys: dict[str, str], flask_requests: list[str], case: str
) -> None:
    who, data, options = CASES[case]
    key = keys.get(who, who) if who else None
    fast = post(client, key, data, **dict(options))
    assert flask_requests == [] or fast.status_code != 200
    view = post(client, key, data, VIA_VIEW, **dict(options))
    assert fast.status_code < 500, fast.get_data(as_text=True)
    assert comparable(fast) == comparable(view)
    if fast.status_code == 401:
        assert fast.headers["WWW-Authenticate"] == 'License realm="vigor"'


def test_a_body_shorter_than_its_length_is_refused_alike(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    short = {"CONTENT_LENGTH": "500"}  # the client stopped sending after 9 bytes
    fast = post(client, keys["active"], b'{"nonce":', environ_overrides=short)
    view = post(client, keys["active"], b'{"nonce":', VIA_VIEW, environ_overrides=short)
    assert fast.status_code == 400
    assert comparable(fast) == comparable(view)


def test_both_paths_count_against_the_same_limits(keys: dict[str, str], settings: Settings) -> None:
    with vigor_app(settings.with_(rate_limit_check="3/minute")) as app:
        client = app.test_client()
        first = post(client, keys["active"], None)
        assert first.headers["X-RateLimit-Remaining"] == "2"
        second = post(client, keys["active"], None, VIA_VIEW)
        assert second.headers["X-RateLimit-Remaining"] == "1", "the view counts on the same window"
        assert post(client, keys["active"], None).status_code == 200
        fast, view = post(client, keys["active"], None), post(client, keys["active"], VIA_VIEW)
        assert (fast.status_code, view.status_code) == (429, 429)
        assert comparable(fast) == comparable(view)
        assert 0 < int(fast.headers["Retry-After"]) <= 60


def metric(client: FlaskClient, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(name + "{"):
            found = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if found == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("via", ["", VIA_VIEW], ids=["fast", "view"])
def test_both_paths_are_counted_in_the_same_metrics(
    client: FlaskClient, keys: dict[str, str], via: str
) -> None:
    ok = {"route": "/api/v1/check", "method": "POST", "status": "200"}
    refused = {**ok, "status": "401"}

    def readings() -> list[float]:
        return [
            metric(client, "vigor_http_requests_total", **ok),
            metric(client, "vigor_http_requests_total", **refused),
            metric(client, "vigor_checks_total", outcome="update"),
            metric(client, "vigor_checks_total", outcome="license_unknown"),
            metric(client, "vigor_http_request_seconds_count", route="/api/v1/check"),
        ]

    before = readings()
    assert post(client, keys["active"], None, via).status_code == 200
    assert post(client, "vgl_" + "y" * 40, None, via).status_code == 401
    after = readings()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1, 2]


@pytest.mark.parametrize("via", ["", VIA_VIEW], ids=["fast", "view"])
def test_a_failure_inside_the_check_is_a_json_500_with_its_traceback_logged(
    app: Flask,
    services: Services,
    keys: dict[str, str],
    via: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_signer() -> Any:
        raise RuntimeError("the signing device fell off " + secrets.token_hex(4))

    services.checks = replace(services.checks, signer=broken_signer)  # type: ignore[misc]
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        response = post(client, keys["active"], None, via)
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "fell off" not in response.get_data(as_text=True), "no internals in the answer"
    logged = [r for r in caplog.records if r.message.startswith("unhandled error on POST")]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "fell off" in str(logged[0].exc_info[1]), "the traceback logged is the failure's"
