"""Webhook endpoints and their delivery log: what admins configure, and what the worker records.

An endpoint is a URL, a signing secret (Standard Webhooks ``whsec_…``, shown once when made or
rotated, kept encrypted with a key derived from the instance's secret key: ``sealed``), the
event types it wants, and whether it is enabled. Events are written by
``server/domain/events.py``; the worker sends each delivery (``server/jobs/webhooks.py``) and
records every attempt here with :func:`record_attempt`, which also disables an endpoint after a
long run of failures (audited, and shown on its page).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit, events, outbox, sealed
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError
from server.domain.models import (
    Job,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    utcnow,
)
from server.domain.vocabulary import DeliveryState, EventType, JobKind, JobState
from server.domain.webhook_urls import Resolver, check_url, resolve

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
MAX_DESCRIPTION = 200
EXCERPT_CHARS = 500  # of each response body kept in the delivery log

SEALED_AS = "webhook-secret"
"""The purpose the signing secrets are encrypted for (``sealed.box``)."""

SUBSCRIBABLE = [t for t in EventType if t != EventType.PING]
"""The event types an endpoint may ask for (a ping goes only where "Send test" sends it)."""


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def seal_secret(secret: str, secret_key: str) -> str:
    """``secret`` as the database keeps it: encrypted with the instance's secret key."""
    return sealed.box(secret_key, SEALED_AS).encrypt(secret.encode()).decode()


def signing_secret(endpoint: WebhookEndpoint, secret_key: str) -> str | None:
    """The endpoint's signing secret in clear; None when it cannot be decrypted (the
    instance's secret key changed since it was made: rotate it)."""
    try:
        return sealed.box(secret_key, SEALED_AS).decrypt(endpoint.secret_encrypted).decode()
    except InvalidToken:
        return None


def parse_event_types(chosen: Iterable[str]) -> list[str]:
    """The event types an admin picked, in the vocabulary's order.

    Raises:
        InvalidInputError: none picked, or one that is not a subscribable type.
    """
    picked = {str(value).strip() for value in chosen}
    unknown = sorted(picked - {str(t) for t in SUBSCRIBABLE})
    if unknown:
        raise InvalidInputError(
            "event_types",
            f"unknown event type {unknown[0]!r}; choose from {', '.join(SUBSCRIBABLE)}",
        )
    if not picked:
        raise InvalidInputError("event_types", "choose at least one event type")
    return [str(t) for t in SUBSCRIBABLE if t in picked]


def _description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInputError("description", f"at most {MAX_DESCRIPTION} characters")
    if any(ord(char) < 0x20 for char in text):
        raise InvalidInputError("description", "one line of text, without control characters")
    return text


@dataclass(frozen=True)
class EndpointSpec:
    """What an admin sets on an endpoint (the form, the API body)."""

    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool = True


def create_endpoint(
    session: Session,
    spec: EndpointSpec,
    *,
    actor: str,
    allow_private: bool,
    secret_key: str,
    resolver: Resolver = resolve,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint; returns it and its secret (shown once). Commits.

    ``secret_key``: the instance's, which the signing secret is encrypted with.

    Raises:
        InvalidInputError: a refused URL (see ``webhook_urls``), description or event types.
    """
    endpoint = WebhookEndpoint(
        url=check_url(spec.url, allow_private=allow_private, resolver=resolver),
        description=_description(spec.description),
        event_types=parse_event_types(spec.event_types),
        enabled=spec.enabled,
        secret_encrypted=seal_secret(secret := new_secret(), secret_key),
        disabled_reason="",
        consecutive_failures=0,
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    events.forget_listening(session)
    audit.record(
        session,
        actor,
        "webhook.add",
        f"webhook {endpoint.id}",
        url=endpoint.url,
        event_types=endpoint.event_types,
    )
    session.commit()
    return endpoint, secret


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    spec: EndpointSpec,
    *,
    actor: str,
    allow_private: bool,
    resolver: Resolver = resolve,
) -> WebhookEndpoint:
    """Change an endpoint; enabling a disabled one starts its failure count anew. Commits.

    Raises:
        InvalidInputError: a refused URL, description or event types (nothing is changed).
    """
    url = check_url(spec.url, allow_private=allow_private, resolver=resolver)
    description = _description(spec.description)
    event_types = parse_event_types(spec.event_types)
    endpoint.url, endpoint.description, endpoint.event_types = url, description, event_types
    _switch(session, endpoint, spec.enabled, actor)
    audit.record(
        session,
        actor,
        "webhook.edit",
        f"webhook {endpoint.id}",
        url=url,
        event_types=event_types,
        enabled=spec.enabled,
    )
    session.commit()
    return endpoint


def set_enabled(
    session: Session,
    endpoint: WebhookEndpoint,
    enabled: bool,
    *,
    actor: str,
    allow_private: bool,
    resolver: Resolver = resolve,
) -> bool:
    """Enable or disable an endpoint, nothing else changed; False when it already was. Commits.

    Enabling checks its URL again (as saving it does) and starts its failure count anew;
    disabling never checks anything (an endpoint whose host no longer resolves can be stopped).

    Raises:
        InvalidInputError: enabling an endpoint whose URL is now refused (nothing is changed).
    """
    if endpoint.enabled == enabled:
        return False
    if enabled:
        check_url(endpoint.url, allow_private=allow_private, resolver=resolver)
    _switch(session, endpoint, enabled, actor)
    audit.record(
        session,
        actor,
        "webhook.edit",
        f"webhook {endpoint.id}",
        url=endpoint.url,
        event_types=endpoint.event_types,
        enabled=enabled,
    )
    session.commit()
    return True


def _switch(session: Session, endpoint: WebhookEndpoint, enabled: bool, actor: str) -> None:
    was_enabled, endpoint.enabled = endpoint.enabled, enabled
    if enabled and not was_enabled:
        _reset_failures(endpoint)
        endpoint.disabled_reason = ""
    elif was_enabled and not enabled:
        endpoint.disabled_reason = f"disabled by {actor}"
    events.forget_listening(session)


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, *, actor: str, secret_key: str
) -> str:
    """A new signing secret for ``endpoint`` (the old one stops at once); returns it. Commits."""
    secret = new_secret()
    endpoint.secret_encrypted = seal_secret(secret, secret_key)
    audit.record(session, actor, "webhook.rotate_secret", f"webhook {endpoint.id}")
    session.commit()
    return secret


def remove_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: str) -> None:
    """Delete an endpoint and its delivery log. Commits."""
    audit.record(session, actor, "webhook.remove", f"webhook {endpoint.id}", url=endpoint.url)
    session.delete(endpoint)
    events.forget_listening(session)
    session.commit()


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Raises: NotFoundError: no such endpoint."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def send_test(session: Session, endpoint: WebhookEndpoint, *, actor: str) -> WebhookEvent:
    """Queue a ``ping`` event to ``endpoint`` alone. Commits.

    Raises:
        ConflictError: the endpoint is disabled (nothing would be sent).
    """
    if not endpoint.enabled:
        raise ConflictError("the endpoint is disabled; enable it before sending a test")
    event = events.emit(
        session, EventType.PING, {"endpoint_id": endpoint.id, "actor": actor}, only=endpoint
    )
    assert event is not None
    audit.record(session, actor, "webhook.test", f"webhook {endpoint.id}", event=event.event_id)
    session.commit()
    return event


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery:
    """Raises: NotFoundError: no such delivery."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no webhook delivery {delivery_id}")
    return delivery


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the log shows it, with its job's next try (or that it gave up)."""

    delivery: WebhookDelivery
    next_try: datetime | None
    gave_up: bool


def deliveries(
    session: Session, endpoint: WebhookEndpoint, *, limit: int = 50, before: int | None = None
) -> list[DeliveryRow]:
    """An endpoint's deliveries, newest first, ``limit`` at most (older than id ``before``)."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(session.scalars(query))
    keys = [events.delivery_job_key(d.id) for d in rows]
    by_key = {job.key: job for job in session.scalars(select(Job).where(Job.key.in_(keys)))}
    result = []
    for delivery in rows:
        job = by_key.get(events.delivery_job_key(delivery.id))
        waiting = job is not None and job.state == JobState.QUEUED
        result.append(
            DeliveryRow(
                delivery,
                next_try=job.run_after if waiting and job is not None else None,
                gave_up=job is not None and job.state == JobState.FAILED,
            )
        )
    return result


def redeliver(session: Session, delivery: WebhookDelivery, *, actor: str) -> WebhookDelivery:
    """Send a delivery again now (same event id), whatever its state. Commits.

    Raises:
        ConflictError: its endpoint is disabled, or it is being sent right now.
    """
    if not delivery.endpoint.enabled:
        raise ConflictError("the endpoint is disabled; enable it before redelivering")
    key = events.delivery_job_key(delivery.id)
    job = session.scalar(select(Job).where(Job.key == key))
    if job is not None and job.state == JobState.RUNNING:
        raise ConflictError(f"delivery {delivery.id} is being sent right now")
    delivery.state = DeliveryState.PENDING
    if job is not None and job.state == JobState.QUEUED:
        outbox.requeue(job)  # waiting for a later retry: due now instead
        session.flush()
        session.info.setdefault(outbox.DISPATCH, []).append(job.id)
    else:
        outbox.enqueue(session, JobKind.WEBHOOK_DELIVERY, key, {"delivery_id": delivery.id})
    audit.record(
        session,
        actor,
        "webhook.redeliver",
        f"webhook {delivery.endpoint_id}",
        delivery=delivery.id,
        event=delivery.event.event_id,
    )
    session.commit()
    return delivery


# The worker's side: what to send, and what came of it.


@dataclass(frozen=True)
class Outgoing:
    """One attempt to make: where, signed with what (None: the secret cannot be decrypted), and
    the exact bytes."""

    delivery_id: int
    url: str
    secret: str | None
    event_id: str
    body: str


def outgoing(session: Session, delivery_id: int, *, secret_key: str) -> Outgoing | None:
    """What to send for ``delivery_id``, or None when nothing is to be sent: the delivery is
    gone or delivered already (a job run twice after a crash), or its endpoint was disabled
    (the delivery is then cancelled). Commits."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.state == DeliveryState.DELIVERED:
        return None
    if not delivery.endpoint.enabled:
        delivery.state = DeliveryState.CANCELLED
        session.commit()
        return None
    body = json.dumps(events.envelope(delivery.event), separators=(",", ":"), sort_keys=True)
    endpoint = delivery.endpoint
    secret = signing_secret(endpoint, secret_key)
    return Outgoing(delivery.id, endpoint.url, secret, delivery.event.event_id, body)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to: an HTTP status (any), or an error before one arrived."""

    at: datetime
    duration_ms: int
    status_code: int | None = None
    response_excerpt: str = ""
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class DisablePolicy:
    """When a failing endpoint is disabled: after this many failures in a row, spanning at
    least this long (a short outage of a busy endpoint is not "a long run of failures")."""

    failures: int = 20
    span: timedelta = timedelta(hours=72)


def record_attempt(
    session: Session, delivery_id: int, result: AttemptResult, policy: DisablePolicy
) -> WebhookDelivery | None:
    """Log an attempt; count the endpoint's failures and disable it after a long run. Commits."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        session.rollback()
        return None
    delivery.attempts += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            at=result.at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            response_excerpt=result.response_excerpt[:EXCERPT_CHARS],
            error=result.error[:EXCERPT_CHARS],
        )
    )
    delivery.last_status = result.status_code
    endpoint = delivery.endpoint
    if result.delivered:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = result.at
        _reset_failures(endpoint)
    else:
        delivery.state = DeliveryState.RETRYING
        endpoint.consecutive_failures += 1
        endpoint.failing_since = endpoint.failing_since or result.at
        if (
            endpoint.enabled
            and endpoint.consecutive_failures >= policy.failures
            and result.at - endpoint.failing_since >= policy.span
        ):
            _disable_failing(session, endpoint, result.at)
    session.commit()
    return delivery


def _reset_failures(endpoint: WebhookEndpoint) -> None:
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None


def _disable_failing(session: Session, endpoint: WebhookEndpoint, now: datetime) -> None:
    since = endpoint.failing_since or now
    endpoint.enabled = False
    events.forget_listening(session)
    endpoint.disabled_reason = (
        f"disabled automatically on {now:%Y-%m-%d %H:%M} UTC: "
        f"{endpoint.consecutive_failures} deliveries in a row failed since "
        f"{since:%Y-%m-%d %H:%M} UTC"
    )
    audit.record(
        session,
        "system",
        "webhook.auto_disable",
        f"webhook {endpoint.id}",
        failures=endpoint.consecutive_failures,
        failing_since=since.isoformat(),
    )
