"""HTTP layer: thin views over the domain services."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from server.services import Services


def services() -> Services:
    vigor: Services = current_app.extensions["vigor"]
    return vigor


def db_session() -> Session:
    """The request's database session (closed at the end of the request)."""
    if "db_session" not in g:
        g.db_session = services().db.sessions()
    session: Session = g.db_session
    return session
