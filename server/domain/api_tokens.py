"""API tokens for CI publishing: created by an admin, shown once, stored hashed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import InvalidInputError, NotFoundError
from server.domain.models import ApiToken, utcnow
from server.domain.secrets import display_prefix, matches, new_secret, secret_hash
from server.domain.vocabulary import Role, parse

TOKEN_PREFIX = "vgt"  # noqa: S105 - a label, not a secret


def create_token(
    session: Session, name: str, *, role: str = Role.PUBLISHER, actor: str
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret, which is never shown again."""
    if not name.strip():
        raise InvalidInputError("name", "is required")
    token_role = parse(Role, "role", role)
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken(
        name=name.strip(),
        token_hash=secret_hash(secret),
        token_prefix=display_prefix(secret),
        role=token_role,
        created_by=actor,
    )
    session.add(token)
    audit.record(session, actor, "token.create", token.name, role=token_role)
    session.commit()
    return token, secret


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """The live token ``secret`` names, or None."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == secret_hash(secret)))
    if token is None or token.revoked_at is not None or not matches(secret, token.token_hash):
        return None
    return token


def revoke_token(session: Session, token_id: int, *, actor: str) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", token.name)
        session.commit()
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, live ones first, newest first."""
    return list(
        session.scalars(
            select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
        )
    )
