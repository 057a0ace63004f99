"""``vigor webhook``: an operator adds, lists, disables, enables an endpoint, rotates its secret
and reads its delivery log; what the CLI prints is what a real receiver verifies, and refusals
are one line, exit status 1, and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from server.cli import cli
from server.domain.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from server.services import Services
from tests.common.factories import make_customer
from tests.common.webhook_receiver import WebhookReceiver


def vigor(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, args=list(args))


def _count(svc: Services, model: type[Any]) -> int:
    with svc.db.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_an_operator_manages_an_endpoint_from_the_cli(
    hook_app: Flask,
    svc: Services,
    receiver: WebhookReceiver,
    run_worker_until: Callable[..., Any],
) -> None:
    for args, message in [
        ((receiver.url,), "error: event_types: choose at least one event type\n"),
        (
            (receiver.url, "--event", "licence.revoked"),
            "error: event_types: unknown event type 'licence",
        ),
        (
            ("ftp://crm.example.com/", "--event", "license.revoked"),
            "error: url: must be an absolute",
        ),
    ]:
        refused = vigor(hook_app, "webhook", "add", *args)
        assert refused.exit_code == 1 and refused.stderr.startswith(message), refused.output
        assert len(refused.stderr.splitlines()) == 1 and refused.stdout == ""
    assert _count(svc, WebhookEndpoint) == 0

    added = vigor(
        hook_app, "webhook", "add", receiver.url, "--event", "customer.created",
        "--event", "license.revoked", "--description", "CRM",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    receiver.secret = added.stdout.strip()
    assert receiver.secret.startswith("whsec_") and "not shown again" in added.stderr
    (endpoint_id,) = [
        int(line.split("\t")[0]) for line in vigor(hook_app, "webhook", "list").stdout.splitlines()
    ]
    listed = vigor(hook_app, "webhook", "list").stdout
    assert (
        listed == f"{endpoint_id}\tenabled\t{receiver.url}\tcustomer.created,license.revoked\tCRM\n"
    )
    assert receiver.secret not in listed

    make_customer(svc, "initech", product=None)
    run_worker_until(svc, "the first delivery", receiver.requests)
    assert [(r.type, r.verified) for r in receiver.requests()] == [("customer.created", True)]
    log = vigor(hook_app, "webhook", "deliveries", str(endpoint_id)).stdout.splitlines()
    assert len(log) == 1
    assert log[0].split("\t")[2:] == [
        "customer.created",
        receiver.requests()[0].event_id,
        "delivered",
        "1 attempt",
        "HTTP 204",
    ]

    rotated = vigor(hook_app, "webhook", "rotate-secret", str(endpoint_id))
    assert rotated.exit_code == 0 and rotated.stdout.strip() != receiver.secret
    receiver.secret = rotated.stdout.strip()

    assert vigor(hook_app, "webhook", "disable", str(endpoint_id)).stdout == (
        f"webhook {endpoint_id} disabled\n"
    )
    again = vigor(hook_app, "webhook", "disable", str(endpoint_id))
    assert again.exit_code == 0 and "already disabled" in again.stdout
    assert "\tdisabled (disabled by cli:" in vigor(hook_app, "webhook", "list").stdout
    make_customer(svc, "globex", product=None)
    svc.jobs.runner.run_due()
    assert len(receiver.requests()) == 1 and _count(svc, WebhookDelivery) == 1  # nobody listens

    assert vigor(hook_app, "webhook", "enable", str(endpoint_id)).exit_code == 0
    make_customer(svc, "umbrella", product=None)
    run_worker_until(svc, "the delivery after enabling", lambda: len(receiver.requests()) >= 2)
    last = receiver.requests()[-1]
    assert last.verified and last.payload is not None  # signed with the rotated secret
    assert last.payload["data"]["customer"] == "umbrella"
    with svc.db.sessions() as s:
        actions = list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.startswith("webhook."))
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["webhook.add", "webhook.rotate_secret", "webhook.edit", "webhook.edit"]


def test_an_unknown_endpoint_is_one_line_and_exit_status_1(hook_app: Flask, svc: Services) -> None:
    for command in ("disable", "enable", "rotate-secret", "deliveries"):
        result = vigor(hook_app, "webhook", command, "99")
        assert result.exit_code == 1
        assert result.stderr == "error: no webhook endpoint 99\n" and result.stdout == ""
    assert _count(svc, AuditEvent) == 0
