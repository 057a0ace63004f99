"""Webhooks end to end in one process: changes made through the domain and the API become
events, the worker's handler sends them to a real HTTP receiver that verifies every signature
with the Standard Webhooks library; failures are retried with growing delays and logged; a long
run of failures disables the endpoint; a rolled-back change emits nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.config import Settings
from server.domain import audit, contract_events, customers, releases
from server.domain import webhooks as webhook_service
from server.domain.models import (
    AuditEvent,
    Customer,
    Job,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from server.domain.vocabulary import DeliveryState, EventType, JobKind
from server.jobs.webhooks import NO_SIGNING_KEY, DeliveryFailedError, WebhookSender
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.common.webhook_receiver import WebhookReceiver

ALL_TYPES = tuple(str(t) for t in webhook_service.SUBSCRIBABLE)


def add_endpoint(svc: Services, receiver: WebhookReceiver, types: tuple[str, ...]) -> int:
    with svc.db.sessions() as s:
        endpoint, secret = webhook_service.create_endpoint(
            s,
            webhook_service.EndpointSpec(receiver.url, "test receiver", types),
            actor="test",
            allow_private=True,
            secret_key=svc.settings.secret_key,
        )
        receiver.secret = secret
        return endpoint.id


def test_changes_made_anywhere_reach_the_receiver_signed_with_their_data(
    svc: Services,
    hook_app: Flask,
    receiver: WebhookReceiver,
    tmp_path: Path,
    run_worker_until: Callable[..., Any],
) -> None:
    add_endpoint(svc, receiver, ALL_TYPES)
    today = datetime.now(UTC).date()
    make_product(svc)
    make_release(svc, tmp_path, "1.0.0")
    make_customer(
        svc, "initech", ("maintenance", today - timedelta(days=30), today + timedelta(days=300))
    )
    key = make_license(svc, "initech")
    with svc.db.sessions() as s:
        contract = customers.get_customer(s, "initech").contracts[0]
        customers.renew_contract(s, contract, actor="alice@example.com")
        release = releases.find_release(s, "acme-erp", "1.0.0")
        releases.set_rollout(s, release, 0, actor="alice@example.com")
        releases.yank(s, release, reason="breaks printing", recommended_version=None, actor="bob")
        lic = customers.find_license(s, key)
        customers.set_license_status(s, lic, "suspended", actor="alice@example.com")
        customers.set_license_status(s, lic, "active", actor="alice@example.com")
    report = hook_app.test_client().post(
        "/api/v1/report",
        headers={"Authorization": f"License {key}"},
        json={
            "installation_id": "inst-0123456789abcdef",
            "product": "acme-erp",
            "version": "1.0.0",
            "from_version": "0.9.0",
            "outcome": "failure",
            "code": "E42",
        },
    )
    assert report.status_code == 202, report.get_data(as_text=True)
    with svc.db.sessions() as s:
        customers.set_license_status(s, customers.find_license(s, key), "revoked", actor="carol")

    expected = [
        "release.published",
        "customer.created",
        "contract.created",
        "license.issued",
        "contract.renewed",
        "rollout.halted",
        "release.yanked",
        "license.suspended",
        "license.reactivated",
        "installation.update_failed",
        "license.revoked",
    ]
    got = run_worker_until(
        svc,
        "every event at the receiver",
        lambda: len(receiver.requests()) >= len(expected) and receiver.requests(),
    )
    assert all(r.verified for r in got), "every signature verifies with the endpoint's secret"
    assert sorted(r.type for r in got) == sorted(expected)
    assert len({r.event_id for r in got}) == len(expected)
    assert all(r.event_id.startswith("msg_") for r in got)
    by_type = {r.type: r.payload["data"] for r in got if r.payload}
    assert by_type["release.published"]["product"] == "acme-erp"
    assert by_type["release.published"]["version"] == "1.0.0"
    assert by_type["contract.renewed"]["customer"] == "initech"
    assert by_type["contract.renewed"]["actor"] == "alice@example.com"
    assert by_type["release.yanked"]["reason"] == "breaks printing"
    assert key.startswith(by_type["license.suspended"]["key_prefix"])
    failed = by_type["installation.update_failed"]
    assert (failed["customer"], failed["version"], failed["code"]) == ("initech", "1.0.0", "E42")
    with svc.db.sessions() as s:
        states = set(s.scalars(select(WebhookDelivery.state)))
    assert states == {DeliveryState.DELIVERED}


def test_an_endpoint_gets_only_the_types_it_chose(
    svc: Services,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
) -> None:
    add_endpoint(svc, receiver, ("license.revoked",))
    make_product(svc)
    make_customer(svc, "initech", product=None)
    key = make_license(svc, "initech")
    with svc.db.sessions() as s:
        customers.set_license_status(s, customers.find_license(s, key), "revoked", actor="carol")
    got = run_worker_until(svc, "the revocation", receiver.requests)
    svc.jobs.runner.run_due()
    assert [r.type for r in receiver.requests()] == ["license.revoked"] == [r.type for r in got]


def _event_types(svc: Services) -> list[str]:
    with svc.db.sessions() as s:
        return [str(t) for t in s.scalars(select(WebhookEvent.type).order_by(WebhookEvent.id))]


def test_events_nobody_listens_to_are_not_written_and_a_new_endpoint_is_seen_at_once(
    svc: Services, receiver: WebhookReceiver
) -> None:
    with svc.db.sessions() as s:  # one session, several transactions (as a long-lived one)
        audit.record(s, "test", "customer.add", "ghost-1", name="Ghost")
        s.commit()
        assert _event_types(svc) == []  # no endpoint: the audit record alone
        endpoint_id = add_endpoint(svc, receiver, ("customer.created",))  # another session
        audit.record(s, "test", "customer.add", "ghost-2", name="Ghost")
        audit.record(s, "test", "license.issue", "ghost-2/vgl_abc", product="acme-erp")
        s.commit()
        assert _event_types(svc) == ["customer.created"]  # license.issued: nobody wants it
        with svc.db.sessions() as other:
            webhook_service.update_endpoint(
                other,
                webhook_service.get_endpoint(other, endpoint_id),
                webhook_service.EndpointSpec(receiver.url, "", ("customer.created",), False),
                actor="test",
                allow_private=True,
            )
        audit.record(s, "test", "customer.add", "ghost-3", name="Ghost")
        s.commit()
    assert _event_types(svc) == ["customer.created"]  # disabled: nobody listens again
    with svc.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) >= 4
        assert [d.event.data["customer"] for d in s.scalars(select(WebhookDelivery))] == ["ghost-2"]


def test_a_change_that_rolls_back_emits_no_event(svc: Services, receiver: WebhookReceiver) -> None:
    add_endpoint(svc, receiver, ALL_TYPES)
    with svc.db.sessions() as s:
        s.add(Customer(slug="ghost", name="Ghost", language=""))
        audit.record(s, "test", "customer.add", "ghost", name="Ghost")
        s.flush()  # the event and its delivery job are written…
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == 1
        s.rollback()  # …and go with the change
    with svc.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert not list(s.scalars(select(Job).where(Job.kind == JobKind.WEBHOOK_DELIVERY)))
        assert s.scalar(select(Customer).where(Customer.slug == "ghost")) is None
    assert svc.jobs.runner.run_due() == 0
    assert receiver.requests() == []


def test_a_failing_receiver_gets_retries_with_growing_delays_and_the_same_event_id(
    svc: Services,
    hook_app: Flask,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
) -> None:
    receiver.status = lambda n: 500 if n < 3 else 200
    add_endpoint(svc, receiver, ("customer.created",))
    make_customer(svc, "initech", product=None)
    got = run_worker_until(
        svc,
        "the 4th attempt",
        lambda: len(receiver.requests()) >= 4 and receiver.requests(),
        timeout=60,
    )
    assert len({r.event_id for r in got}) == 1, "the same webhook-id on every retry"
    assert all(r.verified for r in got)
    with svc.db.sessions() as s:
        attempts = list(s.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))
        delivery = s.scalars(select(WebhookDelivery)).one()
        assert delivery.state == DeliveryState.DELIVERED
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    # VIGOR_WEBHOOK_RETRY_SECONDS=1, doubled each time: 1 s, 2 s, 4 s (and never sooner).
    assert gaps[0] >= 1 and gaps[1] >= 2 and gaps[2] >= 4, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert all(a.response_excerpt == '{"ok": false}' for a in attempts[:3])


def test_a_long_run_of_failures_disables_the_endpoint_audited_and_shown(
    hook_settings: Settings,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
    signed_in: Callable[..., FlaskClient],
) -> None:
    receiver.status = lambda n: 503
    with vigor_app(hook_settings.with_(webhook_disable_after_failures=3)) as app:
        svc: Services = app.extensions["vigor"]
        endpoint_id = add_endpoint(svc, receiver, ("customer.created",))
        make_customer(svc, "initech", product=None)
        run_worker_until(
            svc,
            "the endpoint to be disabled",
            lambda: _endpoint(svc, endpoint_id).enabled is False,
            timeout=60,
        )
        assert len(receiver.requests()) == 3  # VIGOR_WEBHOOK_DISABLE_AFTER_FAILURES
        make_customer(svc, "globex", product=None)  # nothing is sent to a disabled endpoint
        svc.jobs.runner.run_due()
        with svc.db.sessions() as s:
            audited = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "webhook.auto_disable")
            ).one()
            assert audited.actor == "system" and audited.details["failures"] == 3
            states = list(s.scalars(select(WebhookDelivery.state)))
        assert len(receiver.requests()) == 3
        assert states == [DeliveryState.RETRYING]  # globex's event had no enabled endpoint
        page = (
            signed_in(app, svc, "admin")
            .get(f"/admin/webhooks/{endpoint_id}")
            .get_data(as_text=True)
        )
        assert "This endpoint is disabled" in page and "3 deliveries in a row failed" in page


def _endpoint(svc: Services, endpoint_id: int) -> WebhookEndpoint:
    with svc.db.sessions() as s:
        endpoint = s.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


@pytest.mark.parametrize(
    ("ends_in_days", "renewed", "expected"),
    [
        (10, False, ["contract.expiring"]),
        (-3, False, ["contract.lapsed"]),
        (10, True, []),  # renewed: it neither expires nor lapses
        (90, False, []),  # too far off
        (-400, False, []),  # ended long before: not announced now
    ],
)
def test_the_contract_scan_fires_each_event_once_per_contract_period(
    svc: Services, ends_in_days: int, renewed: bool, expected: list[str]
) -> None:
    today = datetime.now(UTC).date()
    make_product(svc)
    end = today + timedelta(days=ends_in_days)
    make_customer(svc, "initech", ("maintenance", end - timedelta(days=365), end))
    if renewed:
        with svc.db.sessions() as s:
            customers.renew_contract(
                s, customers.get_customer(s, "initech").contracts[0], actor="t"
            )
    scans = []
    for _ in range(3):  # the worker runs it every hour, and may run it twice after a crash
        with svc.db.sessions() as s:
            scans.append(contract_events.scan(s, today, window=30))
    with svc.db.sessions() as s:
        timed = list(
            s.scalars(
                select(WebhookEvent.type).where(
                    WebhookEvent.type.in_([EventType.CONTRACT_EXPIRING, EventType.CONTRACT_LAPSED])
                )
            )
        )
    assert timed == expected
    assert scans == [len(expected), 0, 0]


def test_the_lapse_follows_the_expiry_as_days_pass(svc: Services) -> None:
    today = date(2030, 1, 1)
    make_product(svc)
    make_customer(svc, "initech", ("maintenance", date(2029, 1, 10), date(2030, 1, 10)))
    for day in range(40):
        with svc.db.sessions() as s:
            contract_events.scan(s, today + timedelta(days=day), window=30)
    with svc.db.sessions() as s:
        rows = list(s.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
        got = [
            (str(e.type), e.data["days_left"])
            for e in rows
            if e.type in ("contract.expiring", "contract.lapsed")
        ]
    assert got == [("contract.expiring", 9), ("contract.lapsed", -1)]


def test_a_secret_the_instance_key_no_longer_decrypts_is_logged_and_nothing_is_sent(
    svc: Services, receiver: WebhookReceiver
) -> None:
    add_endpoint(svc, receiver, ("customer.created",))
    make_customer(svc, "initech", product=None)
    with svc.db.sessions() as s:
        delivery_id = s.scalars(select(WebhookDelivery.id)).one()
    moved = WebhookSender(  # the instance's secret key changed since the endpoint was made
        svc.db,
        timeout=5,
        allow_private=True,
        disable=webhook_service.DisablePolicy(),
        secret_key="another instance secret key, 32+ characters long",
    )
    with pytest.raises(DeliveryFailedError):
        moved({"delivery_id": delivery_id})
    assert receiver.requests() == []
    with svc.db.sessions() as s:
        (attempt,) = s.scalars(select(WebhookAttempt))
        assert attempt.error == NO_SIGNING_KEY and attempt.status_code is None
        assert "rotate the secret" in attempt.error
