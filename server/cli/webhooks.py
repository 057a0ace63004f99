"""``vigor webhook``: the endpoints Vigor tells about events, as the Webhooks page manages
them (docs/webhooks.md). A signing secret is printed once, on stdout (the rest goes to stderr),
when an endpoint is added or its secret rotated."""

from __future__ import annotations

import click

from server.cli.common import ACTOR, command, services, transaction
from server.domain import webhooks
from server.domain.models import WebhookEndpoint


@click.group()
def webhook() -> None:
    """Webhook endpoints and their delivery logs."""


def _state(endpoint: WebhookEndpoint) -> str:
    if endpoint.enabled:
        return "enabled"
    return f"disabled ({endpoint.disabled_reason})" if endpoint.disabled_reason else "disabled"


@command(webhook, "list")
def webhook_list() -> None:
    """Every endpoint: id, state, URL, event types, description."""
    with transaction() as session:
        for e in webhooks.list_endpoints(session):
            click.echo(f"{e.id}\t{_state(e)}\t{e.url}\t{','.join(e.event_types)}\t{e.description}")


@command(webhook, "add")
@click.argument("url")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    metavar="TYPE",
    help=f"An event type it receives (repeat for several): {', '.join(webhooks.SUBSCRIBABLE)}.",
)
@click.option("--description", default="", help="What it is (shown in the list).")
@click.option("--disabled", is_flag=True, help="Add it disabled (nothing is sent until enabled).")
def webhook_add(url: str, event_types: tuple[str, ...], description: str, disabled: bool) -> None:
    """Add an endpoint; its signing secret is printed once."""
    settings = services().settings
    with transaction() as session:
        endpoint, secret = webhooks.create_endpoint(
            session,
            webhooks.EndpointSpec(url, description, event_types, enabled=not disabled),
            actor=ACTOR,
            allow_private=settings.webhook_allow_private,
            secret_key=settings.require_secret(),
        )
        click.echo(secret)
        click.echo(
            f"webhook {endpoint.id} ({endpoint.url}: {', '.join(endpoint.event_types)}; "
            f"{_state(endpoint)}); the secret above is not shown again",
            err=True,
        )


def _set_enabled(endpoint_id: int, enabled: bool) -> None:
    with transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        changed = webhooks.set_enabled(
            session,
            endpoint,
            enabled,
            actor=ACTOR,
            allow_private=services().settings.webhook_allow_private,
        )
        state = "enabled" if enabled else "disabled"
        click.echo(
            f"webhook {endpoint.id} {state}"
            if changed
            else f"webhook {endpoint.id} was already {state}"
        )


@command(webhook, "disable")
@click.argument("endpoint_id", type=int)
def webhook_disable(endpoint_id: int) -> None:
    """Stop sending to an endpoint (its pending deliveries are cancelled when due)."""
    _set_enabled(endpoint_id, False)


@command(webhook, "enable")
@click.argument("endpoint_id", type=int)
def webhook_enable(endpoint_id: int) -> None:
    """Send to an endpoint again (its URL is checked again; its failure count starts anew)."""
    _set_enabled(endpoint_id, True)


@command(webhook, "rotate-secret")
@click.argument("endpoint_id", type=int)
def webhook_rotate_secret(endpoint_id: int) -> None:
    """A new signing secret, printed once; the old one stops at once."""
    with transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        secret = webhooks.rotate_secret(
            session, endpoint, actor=ACTOR, secret_key=services().settings.require_secret()
        )
        click.echo(secret)
        click.echo(
            f"webhook {endpoint.id}: new signing secret above, not shown again; "
            "the old one no longer signs",
            err=True,
        )


@command(webhook, "deliveries")
@click.argument("endpoint_id", type=int)
@click.option(
    "--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="How many."
)
@click.option("--before", type=int, default=None, help="Older than this delivery id (paging).")
def webhook_deliveries(endpoint_id: int, limit: int, before: int | None) -> None:
    """An endpoint's delivery log, newest first: id, time, event, state, attempts, last answer."""
    with transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        for row in webhooks.deliveries(session, endpoint, limit=limit, before=before):
            d = row.delivery
            last = d.log[-1] if d.log else None
            answer = ""
            if last is not None:
                answer = f"HTTP {last.status_code}" if last.status_code else last.error
            then = (
                "gave up"
                if row.gave_up
                else f"next try {row.next_try:%Y-%m-%d %H:%M:%S} UTC"
                if row.next_try
                else ""
            )
            click.echo(
                f"{d.id}\t{d.created_at:%Y-%m-%d %H:%M:%S}\t{d.event.type}\t{d.event.event_id}"
                f"\t{d.state}\t{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
                f"\t{answer}\t{then}".rstrip("\t")
            )
