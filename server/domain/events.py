"""Webhook events: written in the transaction of the change that caused them (an outbox).

Every change already records an audit event in its transaction; :func:`from_audit` (called by
``audit.record``) turns the actions webhooks announce into events, so a change that rolls back
leaves no event and a committed one always has its event — whichever code made the change.
:func:`emit` writes the event and, for each enabled endpoint subscribed to its type, a
delivery and the worker's job to send it (``server/jobs/webhooks.py``). Nothing here sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import outbox
from server.domain.models import (
    AuditEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    utcnow,
)
from server.domain.vocabulary import DeliveryState, EventType, JobKind


def new_event_id() -> str:
    """A Standard Webhooks message id: ``msg_`` and a random UUID's hex."""
    return f"msg_{uuid.uuid4().hex}"


def delivery_job_key(delivery_id: int) -> str:
    return f"webhook:delivery:{delivery_id}"


def emit(
    session: Session,
    event_type: EventType,
    data: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    only: WebhookEndpoint | None = None,
) -> WebhookEvent | None:
    """Write an event and queue its deliveries, in the caller's transaction.

    Args:
        dedupe_key: names an event that must happen once (``contract.expiring:7:2026-12-31``);
            when one with this key exists nothing is written and None is returned.
        only: send to this endpoint alone, whatever it subscribes to (a ping).
    """
    if dedupe_key is not None and session.scalar(
        select(WebhookEvent.id).where(WebhookEvent.dedupe_key == dedupe_key)
    ):
        return None
    event = WebhookEvent(
        event_id=new_event_id(),
        type=event_type,
        data=data,
        dedupe_key=dedupe_key,
        created_at=utcnow(),
    )
    session.add(event)
    endpoints = [only] if only is not None else subscribers(session, event_type)
    for endpoint in endpoints:
        delivery = WebhookDelivery(event=event, endpoint=endpoint, state=DeliveryState.PENDING)
        session.add(delivery)
        session.flush()
        outbox.enqueue(
            session,
            JobKind.WEBHOOK_DELIVERY,
            delivery_job_key(delivery.id),
            {"delivery_id": delivery.id},
        )
    session.flush()
    return event


def subscribers(session: Session, event_type: EventType) -> list[WebhookEndpoint]:
    """The enabled endpoints that asked for ``event_type``."""
    return [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        if event_type in endpoint.event_types
    ]


def envelope(event: WebhookEvent) -> dict[str, Any]:
    """The body every delivery of ``event`` sends (Standard Webhooks' suggested shape)."""
    return {
        "type": str(event.type),
        "timestamp": event.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": event.data,
    }


def _split(target: str, sep: str) -> tuple[str, str]:
    first, _, second = target.partition(sep)
    return first, second


def _release(audit: AuditEvent) -> dict[str, Any]:
    product, version = _split(audit.target, " ")
    return {"product": product, "version": version, **audit.details, "actor": audit.actor}


def _customer(audit: AuditEvent) -> dict[str, Any]:
    return {"customer": audit.target, **audit.details, "actor": audit.actor}


def _license(audit: AuditEvent) -> dict[str, Any]:
    customer, prefix = _split(audit.target, "/")
    return {"customer": customer, "key_prefix": prefix, **audit.details, "actor": audit.actor}


# Audit action → the event it announces, and how its data is made from the audit record. Both
# the names used today (license.suspended, …) and the verbs the admin API uses are listed.
ANNOUNCED: dict[str, tuple[EventType, Callable[[AuditEvent], dict[str, Any]]]] = {
    "release.publish": (EventType.RELEASE_PUBLISHED, _release),
    "release.yank": (EventType.RELEASE_YANKED, _release),
    "rollout.halt": (EventType.ROLLOUT_HALTED, _release),
    "customer.add": (EventType.CUSTOMER_CREATED, _customer),
    "contract.add": (EventType.CONTRACT_CREATED, _customer),
    "contract.renew": (EventType.CONTRACT_RENEWED, _customer),
    "license.issue": (EventType.LICENSE_ISSUED, _license),
    "license.suspended": (EventType.LICENSE_SUSPENDED, _license),
    "license.suspend": (EventType.LICENSE_SUSPENDED, _license),
    "license.active": (EventType.LICENSE_REACTIVATED, _license),
    "license.reactivate": (EventType.LICENSE_REACTIVATED, _license),
    "license.revoked": (EventType.LICENSE_REVOKED, _license),
    "license.revoke": (EventType.LICENSE_REVOKED, _license),
}


def from_audit(session: Session, audit: AuditEvent) -> WebhookEvent | None:
    """The webhook event an audit record announces, if any (called by ``audit.record``)."""
    announced = ANNOUNCED.get(audit.action)
    if announced is None:
        return None
    event_type, data = announced
    return emit(session, event_type, data(audit))
