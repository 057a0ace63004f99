"""API tokens for the admin API (CI publishing, a billing system, a CRM): created by an admin,
shown once, stored hashed, bounded by scopes, optionally expiring, revocable."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError
from server.domain.models import ApiToken, utcnow
from server.domain.secrets import display_prefix, matches, new_secret, secret_hash
from server.domain.vocabulary import ROLE_SCOPES, Role, Scope, parse

TOKEN_PREFIX = "vgt"  # noqa: S105 - a label, not a secret

_DURATION = re.compile(r"\A([1-9][0-9]{0,4})([hdwy])\Z")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_LIFETIME = timedelta(days=3660)


def parse_lifetime(text: str) -> timedelta | None:
    """``90d``, ``12h``, ``8w``, ``1y`` as a time span; "" or ``never`` for a token that does
    not expire.

    Raises:
        InvalidInputError: anything else, or more than ten years.
    """
    text = (text or "").strip().lower()
    if text in {"", "never"}:
        return None
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInputError(
            "expires_in", f"{text[:40]!r} is not a duration such as 90d, 12h, 8w or 1y"
        )
    count, unit = int(match.group(1)), match.group(2)
    span = timedelta(days=365 * count) if unit == "y" else _UNIT[unit] * count
    if span > MAX_LIFETIME:
        raise InvalidInputError("expires_in", "must be at most ten years")
    return span


def parse_scopes(scopes: Iterable[str]) -> list[Scope]:
    """Scope names as scopes, in the vocabulary's order, each once.

    Raises:
        InvalidInputError: a name that is no scope, or none at all.
    """
    chosen = {parse(Scope, "scopes", name.strip()) for name in scopes if name.strip()}
    if not chosen:
        raise InvalidInputError("scopes", "choose at least one scope")
    return [scope for scope in Scope if scope in chosen]


def granted(token: ApiToken) -> frozenset[Scope]:
    """Everything ``token`` may do: its scopes, or what its role meant before scopes."""
    if token.scopes is None:
        return ROLE_SCOPES[Role(token.role)]
    result: frozenset[Scope] = frozenset()
    for name in token.scopes:
        if name in Scope._value2member_map_:
            result |= Scope(name).grants()
    return result


def scope_names(token: ApiToken) -> list[str]:
    """The scopes to show for ``token`` (its role's, spelled out, for a token from before)."""
    if token.scopes is not None:
        return list(token.scopes)
    return [scope.value for scope in Scope if scope in ROLE_SCOPES[Role(token.role)]]


def _role_for(scopes: Iterable[Scope]) -> Role:
    """The old role column of a scoped token: informational (scopes decide), the least role
    whose meaning covers the scopes."""
    wanted = frozenset().union(*(scope.grants() for scope in scopes))
    for role in (Role.VIEWER, Role.PUBLISHER):
        if wanted <= ROLE_SCOPES[role]:
            return role
    return Role.ADMIN


def create_token(
    session: Session,
    name: str,
    *,
    role: str | None = None,
    scopes: Iterable[str] | None = None,
    expires_in: timedelta | None = None,
    actor: str,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret, which is never shown again.

    Give ``scopes`` (names from :class:`Scope`), or a ``role`` for what it meant before scopes
    (publisher when neither is given). Names are unique among live tokens.

    Raises:
        InvalidInputError: no name, an unknown role or scope.
        ConflictError: a live token has this name.
    """
    now = now or utcnow()
    name = (name or "").strip()
    if not name:
        raise InvalidInputError("name", "is required")
    if len(name) > 200:
        raise InvalidInputError("name", "must be at most 200 characters")
    chosen: list[Scope] | None = None
    if scopes is not None:
        chosen = parse_scopes(scopes)
        token_role = _role_for(chosen)
    else:
        token_role = parse(Role, "role", role or Role.PUBLISHER)
    if any(t.is_live(now) for t in session.scalars(select(ApiToken).where(ApiToken.name == name))):
        raise ConflictError(f"a live API token is named {name!r} already", field="name")
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken(
        name=name,
        token_hash=secret_hash(secret),
        token_prefix=display_prefix(secret),
        role=token_role,
        scopes=[scope.value for scope in chosen] if chosen is not None else None,
        expires_at=now + expires_in if expires_in is not None else None,
        created_by=actor,
        created_at=now,
    )
    session.add(token)
    audit.record(
        session,
        actor,
        "token.create",
        token.name,
        role=token_role,
        scopes=scope_names(token),
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
    )
    session.commit()
    return token, secret


def find(session: Session, secret: str) -> ApiToken | None:
    """The token ``secret`` names, live or not, or None."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == secret_hash(secret)))
    if token is None or not matches(secret, token.token_hash):
        return None
    return token


def authenticate(session: Session, secret: str, now: datetime | None = None) -> ApiToken | None:
    """The live (neither revoked nor expired) token ``secret`` names, or None."""
    token = find(session, secret)
    if token is None or not token.is_live(now or utcnow()):
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
