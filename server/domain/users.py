"""Admin users: Argon2id password hashes (m = 19 MiB, t = 2, p = 1, as DESIGN.md asks)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError
from server.domain.models import ROLES, AdminUser

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def check_password(user: AdminUser, password: str) -> bool:
    try:
        return HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_user(session: Session, email: str, password: str, *, role: str, actor: str) -> AdminUser:
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInputError("email", "is not an email address")
    if role not in ROLES:
        raise InvalidInputError("role", f"must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        raise ConflictError(f"user {email} already exists", field="email")
    user = AdminUser(email=email, password_hash=hash_password(password), role=role)
    session.add(user)
    audit.record(session, actor, "user.add", email, role=role)
    session.commit()
    return user
