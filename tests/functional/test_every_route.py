"""Every registered route, walked: the security headers on every answer, and no 500 for hostile
path variables, query parameters or form fields — signed out, as each admin role and as a portal
customer, by GET and by POST.

The API's documented operations are also fuzzed from their OpenAPI schema
(``test_openapi_fuzz.py``); this walk reaches every route, HTML included, from ``app.url_map``
itself, so a route nobody documented is walked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from server.domain import api_tokens, users
from server.domain.vocabulary import Role, Scope, values
from server.services import Services
from server.web.headers import SECURITY_HEADERS
from tests.common.factories import make_customer, make_license, make_product, make_release

PASSWORD = "correct horse battery"

# A value that names something that exists, for each path variable the routes use.
EXISTING = {
    "slug": "initech",
    "product": "acme-erp",
    "version": "1.0.0",
    "action": "suspend",
    "token": "not-a-token",
    "filename": "vigor.css",
    "line": "1.x",
}

HOSTILE = [
    "9999999999999999999999999",
    "18446744073709551616",
    "2147483648",
    "-1",
    "0",
    "a\r\nX-Injected: 1",
    "../../../etc/passwd",
    "..",
    "é✓\U0001f600",
    "nul\x00byte",
    "x" * 5000,
    "9" * 5000,
]
# The query-parameter walk sets every parameter at once; these stand for the kinds above.
HOSTILE_QUERY = [
    "9999999999999999999999999",
    "-1",
    "a\r\nX-Injected: 1",
    "../../../etc/passwd",
    "é✓\U0001f600",
    "nul\x00byte",
    "9" * 5000,
]

# Query parameters and form fields the views read (and a few every site is probed with).
PARAMETERS = [
    "platform",
    "since",
    "period",
    "product",
    "action",
    "actor",
    "next",
    "files",
    "page",
    "id",
    "version",
    "channel",
    "kind",
    "severity",
    "role",
    "name",
    "email",
    "slug",
    "language",
    "percent",
    "starts_on",
    "ends_on",
    "max_installations",
    "label",
    "reason",
    "key",
    # the admin API's (docs/admin-api.md)
    "q",
    "maintenance",
    "cursor",
    "limit",
    "customer",
    "status",
    "prefix",
    "seen_before",
    "seen_after",
    "until",
    "target",
    "ends_before",
    "ends_after",
    "years",
    "note",
    "scopes",
    "expires_in",
]


def rules(app: Flask) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) & {"GET", "POST", "PATCH"})


def path_for(rule: Rule, values_by_name: dict[str, str]) -> str:
    """The rule's path with each variable replaced by its (percent-encoded) value."""
    path = rule.rule
    for name, converter in rule._converters.items():
        value = values_by_name.get(name, "1")
        encoded = quote(value, safe="") if converter.regex != "[^/].*?" else quote(value)
        start = path.index("<")
        path = path[:start] + encoded + path[path.index(">", start) + 1 :]
    return path


@pytest.fixture
def world(app: Flask, services: Services, tmp_path: Path) -> dict[str, str]:
    """Something of every kind, so that the walk reaches past the "not found" answers."""
    app.config["WTF_CSRF_ENABLED"] = False  # the walk must reach the views, not the CSRF check
    make_product(services)
    make_release(services, tmp_path, "1.0.0")
    today = datetime.now(UTC).date()
    make_customer(
        services,
        "initech",
        ("maintenance", today - timedelta(days=30), today + timedelta(days=300)),
    )
    key = make_license(services, "initech")
    with services.db.sessions() as s:
        for role in values(Role):
            users.add_user(s, f"{role}@example.com", PASSWORD, role=role, actor="test")
        s.commit()
        _, api_token = api_tokens.create_token(s, "walk", scopes=values(Scope), actor="test")
    return {"license_key": key, "api_token": api_token}


IDENTITIES = ["signed out", "portal", "api token", *values(Role)]


def client_as(app: Flask, world: dict[str, str], who: str) -> FlaskClient:
    """A client signed out, signed in to the portal with a license key, or as an admin role."""
    client = app.test_client()
    if who == "api token":  # a bearer token with every scope, sent with every request
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {world['api_token']}"
    elif who == "portal":
        signed_in = client.post("/portal/login", data={"key": world["license_key"]})
        assert signed_in.status_code == 303
    elif who != "signed out":
        signed_in = client.post(
            "/admin/login", data={"email": f"{who}@example.com", "password": PASSWORD}
        )
        assert signed_in.status_code == 303, who
    return client


def clients(app: Flask, world: dict[str, str]) -> list[tuple[str, FlaskClient]]:
    """Every identity, signed in before any walks (the admins' walk suspends the license)."""
    return [(who, client_as(app, world, who)) for who in IDENTITIES]


def test_every_route_sends_the_security_headers(app: Flask, world: dict[str, str]) -> None:
    seen = 0
    for who, client in clients(app, world):
        for rule in rules(app):
            for method in methods(rule):
                response = client.open(path_for(rule, EXISTING), method=method)
                response.close()
                for name, value in SECURITY_HEADERS.items():
                    assert response.headers.get(name) == value, (who, method, rule.rule, name)
                assert "Strict-Transport-Security" not in response.headers  # http public URL
                seen += 1
    assert seen > 5 * 35


def test_every_page_answers_head_as_it_answers_get(app: Flask, world: dict[str, str]) -> None:
    """HEAD (what link checkers and `curl -I` send) is GET without the body, for each identity:
    the sign-in and upload pages used to take it for a submitted form."""
    compared = 0
    for who, client in clients(app, world):
        for rule in rules(app):
            if "GET" not in (rule.methods or set()) or rule.endpoint in {"static"}:
                continue
            path = path_for(rule, EXISTING)
            got, head = client.get(path), client.head(path)
            got.close()
            head.close()
            assert head.status_code == got.status_code, (who, rule.rule)
            assert head.data == b"", (who, rule.rule)
            compared += 1
    assert compared > 5 * 25


def test_hsts_when_the_public_url_is_https(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.common.apps import vigor_app

    with vigor_app(settings.with_(public_base_url="https://updates.example")) as app:
        client = app.test_client()
        for path in ("/healthz", "/admin/login", "/no-such-page", "/static/vigor.css"):
            response = client.get(path)
            response.close()
            header = response.headers.get("Strict-Transport-Security", "")
            assert header.startswith("max-age="), path


def hostile_requests(rule: Rule) -> Iterator[tuple[str, dict[str, str]]]:
    """Paths with one hostile path variable at a time, then hostile query parameters."""
    for name in rule._converters:
        for value in HOSTILE:
            yield path_for(rule, {**EXISTING, name: value}), {}
    path = path_for(rule, EXISTING)
    for value in HOSTILE_QUERY:
        yield path, dict.fromkeys(PARAMETERS, value)


@pytest.mark.parametrize("who", IDENTITIES)
def test_no_route_answers_500_to_hostile_input(app: Flask, world: dict[str, str], who: str) -> None:
    client = client_as(app, world, who)
    failures = []
    for rule in rules(app):
        if rule.endpoint in {"auth.logout", "portal.logout"}:
            continue  # walked last below: the client would be signed out for the rest
        for method in methods(rule):
            for path, params in hostile_requests(rule):
                if method == "GET":
                    response = client.get(path, query_string=params)
                else:
                    response = client.open(path, method=method, query_string=params, data=params)
                response.close()
                if method != "GET" and rule.rule.startswith("/api/v1/admin/"):
                    # The admin API reads JSON: every field at once, as a string and a number.
                    for body in (params, dict.fromkeys(params, 10**30)):
                        response = client.open(path, method=method, json=body)
                        response.close()
                        if response.status_code >= 500:
                            failures.append((method, rule.rule, path[:80], repr(body)[:60]))
                # /healthz says 503 for the instance's state (the world's publishes queued patch
                # jobs and no worker runs here), whatever the input: not a failure of the route.
                unhealthy = rule.rule == "/healthz" and response.status_code == 503
                if response.status_code >= 500 and not unhealthy:
                    failures.append((method, rule.rule, path[:80], repr(params)[:60]))
    for logout in ("/admin/logout", "/portal/logout"):
        for value in HOSTILE_QUERY:
            params = dict.fromkeys(PARAMETERS, value)
            assert client.post(logout, query_string=params, data=params).status_code < 500
    assert not failures, "\n".join(map(str, failures[:40]))


def test_out_of_range_ids_are_404(app: Flask, world: dict[str, str]) -> None:
    by_role = dict(clients(app, world))
    huge = "9999999999999999999999999"
    assert by_role["portal"].get(f"/portal/licenses/{huge}/").status_code == 404
    assert by_role["admin"].post(f"/admin/tokens/{huge}/revoke").status_code == 404
    assert by_role["signed out"].get(f"/api/v1/root/{huge}.json").status_code == 404
    assert by_role["admin"].post(f"/admin/tokens/{'9' * 5000}/revoke").status_code == 404


@pytest.mark.parametrize(
    "platform", ["linux-x86_64\r\nX-Injected: 1", "../../../etc/passwd", "windows-arm64"]
)
def test_a_bundle_for_an_unknown_platform_is_400_with_the_platforms_offered(
    app: Flask, world: dict[str, str], platform: str
) -> None:
    portal = dict(clients(app, world))["portal"]
    response = portal.get("/portal/bundle", query_string={"platform": platform})
    assert response.status_code == 400
    assert "Content-Disposition" not in response.headers
    assert "X-Injected" not in response.headers
    page = response.get_data(as_text=True)
    assert "choose one of: linux-x86_64" in page
    offered = portal.get("/portal/bundle", query_string={"platform": "linux-x86_64"})
    assert offered.status_code == 200
    disposition = offered.headers["Content-Disposition"]
    offered.close()
    assert disposition.startswith("attachment; filename=acme-erp-initech-")
    assert disposition.endswith("-linux-x86_64.vgb")
