"""The audit trail: every admin action and every automatic safety action, with who and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server.domain import events as webhook_events
from server.domain.models import AuditEvent, utcnow
from server.domain.paging import Page, Window, page_of


def record(
    session: Session, actor: str, action: str, target: str = "", **details: Any
) -> AuditEvent:
    """Add an audit event to ``session`` (committed with the change it describes), and the
    webhook event it announces, if any (server/domain/events.py): in the same transaction, so
    no change is committed without its event and no event outlives a rolled-back change."""
    event = AuditEvent(at=utcnow(), actor=actor, action=action, target=target, details=details)
    session.add(event)
    webhook_events.from_audit(session, event)
    return event


AUDIT_SORTS = {"-at": AuditEvent.at}


def events(
    session: Session,
    window: Window,
    *,
    action: str = "",
    actor: str = "",
    since: date | None = None,
    until: date | None = None,
    target: str = "",
) -> Page[AuditEvent]:
    """Events newest first: of actions starting with ``action``, by actors whose name holds
    ``actor``, from the day ``since`` to the day ``until`` (both whole UTC days, included),
    about ``target`` or what belongs to it (``initech`` and ``initech/vgl_…``)."""
    query = select(AuditEvent)
    if target:
        query = query.where(
            or_(
                AuditEvent.target == target,
                AuditEvent.target.startswith(f"{target}/", autoescape=True),
            )
        )
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(func.lower(AuditEvent.actor).contains(actor.lower(), autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= datetime.combine(since, time(), UTC))
    if until is not None and until < date.max:
        query = query.where(
            AuditEvent.at < datetime.combine(until + timedelta(days=1), time(), UTC)
        )
    return page_of(session, query, window, AUDIT_SORTS, AuditEvent.id)


def actions(session: Session) -> list[str]:
    """Every action ever recorded, for the filter."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
