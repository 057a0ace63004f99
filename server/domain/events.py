"""Webhook events: written in the transaction of the change that caused them (an outbox).

Every change already records an audit event in its transaction; :func:`from_audit` (called by
``audit.record``) turns the actions webhooks announce into events, so a change that rolls back
leaves no event and a committed one always has its event — whichever code made the change.
:func:`emit` writes the event and, for each enabled endpoint subscribed to its type, a
delivery and the worker's job to send it (``server/jobs/webhooks.py``). Nothing here sends.

An event no enabled endpoint wants is not written at all (only the contract scan's, whose row
is what makes them fire once): which types have subscribers is looked up once per transaction
(:func:`listening`), so a change nobody listens to — 10,000 imported customers — costs a
dictionary look-up per audit record, not a query, an insert and a flush.
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


_LISTENING = "vigor.webhooks.listening"
"""The ``session.info`` key of :func:`listening`'s answer, with the transaction it holds for."""


def listening(session: Session) -> dict[str, tuple[int, ...]]:
    """The ids of the enabled endpoints subscribed to each event type (types nobody wants are
    absent), read once per transaction of ``session``: the next transaction reads again, and
    :func:`forget_listening` (called when an endpoint changes) drops it at once."""
    transaction = session.get_transaction()
    cached = session.info.get(_LISTENING)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]  # type: ignore[no-any-return]
    found: dict[str, list[int]] = {}
    for endpoint_id, event_types in session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ):
        for event_type in event_types:
            found.setdefault(event_type, []).append(endpoint_id)
    answer = {event_type: tuple(ids) for event_type, ids in found.items()}
    session.info[_LISTENING] = (session.get_transaction(), answer)
    return answer


def forget_listening(session: Session) -> None:
    """Drop :func:`listening`'s answer (an endpoint was added, changed, disabled or removed)."""
    session.info.pop(_LISTENING, None)


def emit(
    session: Session,
    event_type: EventType,
    data: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    only: WebhookEndpoint | None = None,
) -> WebhookEvent | None:
    """Write an event and queue its deliveries, in the caller's transaction.

    Nothing is written, and None returned, when no enabled endpoint subscribes to
    ``event_type`` — unless ``dedupe_key`` is given (the row then remembers that it happened).

    Args:
        dedupe_key: names an event that must happen once (``contract.expiring:7:2026-12-31``);
            when one with this key exists nothing is written and None is returned.
        only: send to this endpoint alone, whatever it subscribes to (a ping).
    """
    endpoint_ids = (only.id,) if only is not None else listening(session).get(event_type, ())
    if not endpoint_ids and dedupe_key is None:
        return None
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
    for endpoint_id in endpoint_ids:
        delivery = WebhookDelivery(
            event=event, endpoint_id=endpoint_id, state=DeliveryState.PENDING
        )
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
    if event_type not in listening(session):
        return None  # nobody listens: not even the data is made
    return emit(session, event_type, data(audit))
