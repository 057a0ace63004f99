"""Webhooks through the admin API and the admin pages: CRUD, the secret shown once, refusals
that change nothing, "send test", the delivery log and redelivery with the same event id."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.config import Settings
from server.domain import webhooks as webhook_service
from server.domain.models import AuditEvent, WebhookEndpoint
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.webhook_receiver import WebhookReceiver


def endpoints(svc: Services) -> int:
    with svc.db.sessions() as s:
        return s.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0


def test_the_api_manages_endpoints_tests_them_and_redelivers_with_the_same_event_id(
    hook_app: Flask,
    svc: Services,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
    bearer: Callable[..., dict[str, str]],
) -> None:
    api = hook_app.test_client()
    admin = bearer(svc, "admin")
    created = api.post(
        "/api/v1/admin/webhooks",
        headers=admin,
        json={"url": receiver.url, "event_types": ["license.revoked", "release.published"]},
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    assert body["event_types"] == ["release.published", "license.revoked"]
    receiver.secret = body["secret"]
    hook = f"/api/v1/admin/webhooks/{body['id']}"
    shown = api.get(hook, headers=bearer(svc, "viewer")).get_json()
    assert "secret" not in shown, "shown once, at creation"

    assert api.post(f"{hook}/test", headers=admin).status_code == 202
    run_worker_until(svc, "the ping", lambda: len(receiver.requests()) >= 1)
    (ping,) = receiver.requests()
    assert ping.verified and ping.type == "ping"

    log = api.get(f"{hook}/deliveries", headers=admin).get_json()
    assert [d["state"] for d in log] == ["delivered"]
    assert log[0]["attempts"][0]["status_code"] == 204
    again = api.post(f"/api/v1/admin/webhooks/deliveries/{log[0]['id']}/redeliver", headers=admin)
    assert again.status_code == 202
    run_worker_until(svc, "the redelivery", lambda: len(receiver.requests()) >= 2)
    assert receiver.requests()[1].event_id == ping.event_id, "a redelivery keeps the event id"
    assert receiver.requests()[1].verified
    log = api.get(f"{hook}/deliveries", headers=admin).get_json()
    assert [a["number"] for a in log[0]["attempts"]] == [1, 2]

    rotated = api.post(f"{hook}/secret", headers=admin).get_json()["secret"]
    assert rotated != receiver.secret
    receiver.secret = rotated
    changed = api.patch(hook, headers=admin, json={"enabled": False, "description": "CRM"})
    assert changed.status_code == 200
    assert changed.get_json()["enabled"] is False
    assert changed.get_json()["event_types"] == ["release.published", "license.revoked"]
    refused = api.post(f"{hook}/test", headers=admin)
    assert refused.status_code == 409
    assert "disabled" in refused.get_json()["error"]["message"]
    assert api.delete(hook, headers=admin).status_code == 204
    assert api.get(hook, headers=admin).status_code == 404
    assert endpoints(svc) == 0


REFUSED = [
    ({"url": "http://127.0.0.1/x", "event_types": []}, "event_types"),
    ({"url": "http://127.0.0.1/x", "event_types": ["ping"]}, "event_types"),
    ({"url": "gopher://example.com/x", "event_types": ["license.revoked"]}, "url"),
    ({"event_types": ["license.revoked"]}, "url"),
    ({"url": "http://127.0.0.1/x", "event_types": "license.revoked"}, "event_types"),
    (
        {"url": "http://127.0.0.1/x", "event_types": ["license.revoked"], "enabled": "yes"},
        "enabled",
    ),
    (
        {"url": "http://127.0.0.1/x", "event_types": ["ping"], "description": "x" * 201},
        "description",
    ),
    (
        {"url": "http://127.0.0.1/x", "event_types": ["ping"], "description": "a\x00b"},
        "description",
    ),
    ([], "body"),
]


def test_the_api_refuses_a_bad_endpoint_and_creates_nothing(
    hook_app: Flask,
    svc: Services,
    bearer: Callable[..., dict[str, str]],
) -> None:
    api, admin = hook_app.test_client(), bearer(svc, "admin")
    for body, field in REFUSED:
        response = api.post("/api/v1/admin/webhooks", headers=admin, json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["field"] == field, body
    assert endpoints(svc) == 0


def test_a_body_nested_too_deeply_or_not_json_is_refused_not_a_500(
    hook_app: Flask,
    svc: Services,
    bearer: Callable[..., dict[str, str]],
) -> None:
    """The webhooks API and the test e-mail read their bodies as the rest of the admin API
    (server/web/json_body.py)."""
    api, admin = hook_app.test_client(), bearer(svc, "admin")
    deep = '{"url": "http://127.0.0.1/x", "event_types": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for path in ("/api/v1/admin/webhooks", "/api/v1/admin/emails/test"):
        response = api.post(path, headers=admin, data=deep, content_type="application/json")
        assert response.status_code == 400, (path, response.get_data())
        assert response.get_json()["error"]["field"] == "body"
    as_form = api.post(
        "/api/v1/admin/webhooks",
        headers=admin,
        data={"url": "http://127.0.0.1/x", "event_types": "license.revoked"},
    )
    assert as_form.status_code == 415
    assert endpoints(svc) == 0


def test_private_addresses_are_refused_unless_the_setting_allows_them(
    settings: Settings,
    bearer: Callable[..., dict[str, str]],
) -> None:
    with vigor_app(settings) as app:
        svc: Services = app.extensions["vigor"]
        response = app.test_client().post(
            "/api/v1/admin/webhooks",
            headers=bearer(svc, "admin"),
            json={"url": "http://169.254.169.254/latest", "event_types": ["license.revoked"]},
        )
        assert response.status_code == 400
        assert "VIGOR_WEBHOOK_ALLOW_PRIVATE" in response.get_json()["error"]["message"]
        assert endpoints(svc) == 0


def test_only_admin_tokens_change_webhooks(
    hook_app: Flask,
    svc: Services,
    bearer: Callable[..., dict[str, str]],
) -> None:
    api = hook_app.test_client()
    for role in ("publisher", "viewer"):
        response = api.post(
            "/api/v1/admin/webhooks",
            headers=bearer(svc, role),
            json={"url": "http://127.0.0.1/x", "event_types": ["license.revoked"]},
        )
        assert response.status_code == 403
        assert api.get("/api/v1/admin/webhooks", headers=bearer(svc, role)).status_code == 200
    assert api.get("/api/v1/admin/webhooks").status_code == 401
    assert endpoints(svc) == 0


def test_the_admin_pages_add_an_endpoint_show_its_secret_once_and_send_a_test(
    hook_app: Flask,
    svc: Services,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
    signed_in: Callable[..., FlaskClient],
) -> None:
    admin = signed_in(hook_app, svc, "admin")
    refused = admin.post(
        "/admin/webhooks", data={"url": "not a url", "event_types": ["license.revoked"]}
    )
    assert refused.status_code == 400
    assert "must be an absolute http:// or https:// URL" in refused.get_data(as_text=True)
    assert endpoints(svc) == 0

    added = admin.post(
        "/admin/webhooks",
        data={
            "url": receiver.url,
            "description": "Support desk",
            "event_types": ["license.revoked", "contract.lapsed"],
            "enabled": "on",
        },
    )
    assert added.status_code == 200
    page = added.get_data(as_text=True)
    (secret,) = set(re.findall(r"whsec_[A-Za-z0-9+/]+=*", page))
    with svc.db.sessions() as s:
        endpoint = s.scalars(select(WebhookEndpoint)).one()
        endpoint_id = endpoint.id
        assert endpoint.event_types == ["contract.lapsed", "license.revoked"]
        # Encrypted at rest: not in the row, and only the instance's secret key reads it.
        assert secret[6:] not in endpoint.secret_encrypted
        assert webhook_service.signing_secret(endpoint, svc.settings.secret_key) == secret
        assert webhook_service.signing_secret(endpoint, "another instance") is None
    assert "shown this once" in page
    later = admin.get(f"/admin/webhooks/{endpoint_id}").get_data(as_text=True)
    assert secret not in later
    receiver.secret = secret

    tested = admin.post(f"/admin/webhooks/{endpoint_id}/test")
    assert tested.status_code == 303
    run_worker_until(svc, "the ping", lambda: len(receiver.requests()) >= 1)
    assert receiver.requests()[0].verified
    log = admin.get(f"/admin/webhooks/{endpoint_id}").get_data(as_text=True)
    assert receiver.requests()[0].event_id in log and "HTTP 204" in log
    listing = admin.get("/admin/webhooks").get_data(as_text=True)
    assert receiver.url in listing and "Support desk" in listing
    with svc.db.sessions() as s:
        actions = list(
            s.scalars(select(AuditEvent.action).where(AuditEvent.action.startswith("webhook.")))
        )
    assert actions == ["webhook.add", "webhook.test"]


def test_a_viewer_sees_webhooks_but_cannot_change_them(
    hook_app: Flask,
    svc: Services,
    signed_in: Callable[..., FlaskClient],
) -> None:
    viewer = signed_in(hook_app, svc, "viewer")
    page = viewer.get("/admin/webhooks")
    assert page.status_code == 200 and "Add an endpoint" not in page.get_data(as_text=True)
    response = viewer.post(
        "/admin/webhooks", data={"url": "http://127.0.0.1/x", "event_types": ["license.revoked"]}
    )
    assert response.status_code == 403
    assert endpoints(svc) == 0


def test_the_webhooks_api_conforms_to_its_schema_with_an_admin_token(
    hook_app: Flask,
    svc: Services,
    bearer: Callable[..., dict[str, str]],
) -> None:
    """The documented operations, fuzzed past the token check (the suite-wide fuzz runs them
    signed out): no 500, and every answer as documented."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", hook_app)
    headers = bearer(svc, "admin")
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/api/v1/admin/webhooks")
    ]
    assert len(operations) == 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: object) -> None:
            case.call_and_validate(headers=headers)  # type: ignore[attr-defined]

        run()
