"""The audit trail: every admin action and every automatic safety action, with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.domain.models import AuditEvent, utcnow


def record(
    session: Session, actor: str, action: str, target: str = "", **details: Any
) -> AuditEvent:
    """Add an audit event to ``session`` (committed with the change it describes)."""
    event = AuditEvent(at=utcnow(), actor=actor, action=action, target=target, details=details)
    session.add(event)
    return event
