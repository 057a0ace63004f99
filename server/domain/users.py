"""Admin users: Argon2id password hashes (m = 19 MiB, t = 2, p = 1, as DESIGN.md asks).

The hashing and email rules here serve the customers' portal users too
(:mod:`server.domain.portal_users`).
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError
from server.domain.models import AdminUser
from server.domain.vocabulary import Role, parse

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return HASHER.hash(password)


@functools.cache
def _no_user_hash() -> str:
    """A hash of nothing anyone knows, verified against when there is no user, so that a sign-in
    for an unknown email costs as long as one for a known email (no timing oracle). Made on
    first use: not every process that imports this signs anyone in."""
    return HASHER.hash("vigor: no such user")


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (None: no password)."""
    try:
        return HASHER.verify(password_hash or _no_user_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    """An email as stored: trimmed and lowercased (so that uniqueness ignores case).

    Raises:
        InvalidInputError: it is not an email address.
    """
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in email):
        raise InvalidInputError("email", "is not an email address")
    if len(email) > 320:
        raise InvalidInputError("email", "is longer than 320 characters")
    return email


def add_user(session: Session, email: str, password: str, *, role: str, actor: str) -> AdminUser:
    email = normalize_email(email)
    user_role = parse(Role, "role", role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        raise ConflictError(f"user {email} already exists", field="email")
    user = AdminUser(email=email, password_hash=hash_password(password), role=user_role)
    session.add(user)
    audit.record(session, actor, "user.add", email, role=user_role)
    session.commit()
    return user
