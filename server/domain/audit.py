"""The audit trail: every admin action and every automatic safety action, with who and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import events
from server.domain.models import AuditEvent, utcnow


def record(
    session: Session, actor: str, action: str, target: str = "", **details: Any
) -> AuditEvent:
    """Add an audit event to ``session`` (committed with the change it describes), and the
    webhook event it announces, if any (server/domain/events.py): in the same transaction, so
    no change is committed without its event and no event outlives a rolled-back change."""
    event = AuditEvent(at=utcnow(), actor=actor, action=action, target=target, details=details)
    session.add(event)
    events.from_audit(session, event)
    return event


@dataclass(frozen=True)
class AuditLog:
    events: list[AuditEvent]  # newest first
    actions: list[str]  # every action ever recorded, for the filter


def recent(session: Session, *, action: str = "", actor: str = "", limit: int = 200) -> AuditLog:
    """The newest ``limit`` events, of actions starting with ``action`` and by ``actor`` when
    given."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    return AuditLog(
        events=list(session.scalars(query)),
        actions=list(
            session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
        ),
    )
