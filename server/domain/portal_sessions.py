"""Portal sessions opened with a license key, recorded server-side.

A key sign-in creates a row with a random token (only its SHA-256 is stored) and an expiry; the
session cookie holds the token. Every portal page looks the row up, so signing out — which
deletes it — ends every copy of the cookie too. The row expires with the cookie's lifetime;
expired rows are deleted whenever a new session opens. A suspended or revoked license closes
its sessions at once (its status is checked on every page as well).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.domain.models import License, PortalKeySession
from server.domain.secrets import secret_hash
from server.domain.vocabulary import LicenseStatus

_TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


def open_session(session: Session, lic: License, *, now: datetime, lifetime: timedelta) -> str:
    """Record a new key session for ``lic``; returns its token, for the session cookie."""
    session.execute(delete(PortalKeySession).where(PortalKeySession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        PortalKeySession(
            token_hash=secret_hash(token), license=lic, created_at=now, expires_at=now + lifetime
        )
    )
    session.commit()
    return token


def session_license(session: Session, token: object, *, now: datetime) -> License | None:
    """The license an open key session holds: None once it is closed, expired, or the license
    is no longer active (a cookie's content is whatever a client sent: anything at all)."""
    if not isinstance(token, str) or len(token) != _TOKEN_CHARS:
        return None
    row = session.scalar(
        select(PortalKeySession).where(PortalKeySession.token_hash == secret_hash(token))
    )
    if row is None or row.expires_at <= now or row.license.status != LicenseStatus.ACTIVE:
        return None
    return row.license


def close_session(session: Session, token: object) -> None:
    """End a key session: every copy of its cookie stops working."""
    if isinstance(token, str):
        session.execute(
            delete(PortalKeySession).where(PortalKeySession.token_hash == secret_hash(token))
        )
        session.commit()
