"""Admin users: the vendor's people who sign in to the admin web, and their lifecycle.

Passwords are Argon2id hashes (m = 19 MiB, t = 2, p = 1, as DESIGN.md asks); the hashing and
email rules here serve the customers' portal users too (:mod:`server.domain.portal_users`).

Every change that must end a person's sessions bumps their ``session_version``: signing out,
a new password (their own change, a reset, one set through a link), disable and enable. Admins
add people (who choose a password through a set-password link, :mod:`.password_links`), change
roles, disable, reset and remove them; there is always at least one active admin left — an
enabled admin with a password, who can sign in — (a change that would leave none is refused, and
changes nothing). Every change is audited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.domain import audit, password_links
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError, SignInRefusedError
from server.domain.models import AdminUser
from server.domain.password_links import LinkSigner
from server.domain.vocabulary import Role, parse

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD_LENGTH = 10
LINKS = LinkSigner("vigor.admin.set-password.v1")  # a portal link never opens an admin account
Invitation = password_links.Invitation[AdminUser]


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


def _checked_password(password: str) -> str:
    """The hash of a new password.

    Raises:
        InvalidInputError: shorter than :data:`MIN_PASSWORD_LENGTH`.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return hash_password(password)


def _new_user(session: Session, email: str, role: str, password_hash: str) -> AdminUser:
    email = normalize_email(email)
    user_role = parse(Role, "role", role)
    if session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        raise ConflictError(f"user {email} already exists", field="email")
    user = AdminUser(email=email, password_hash=password_hash, role=user_role)
    session.add(user)
    return user


def add_user(session: Session, email: str, password: str, *, role: str, actor: str) -> AdminUser:
    """Add an admin user with a password (``vigor user add``).

    Raises:
        InvalidInputError: a bad email, role or a too short password.
        ConflictError: a user with this email exists already.
    """
    user = _new_user(session, email, role, _checked_password(password))
    audit.record(session, actor, "user.add", user.email, role=user.role)
    session.commit()
    return user


def invite_user(
    session: Session, email: str, *, role: str, secret_key: str, actor: str, now: datetime
) -> Invitation:
    """Add an admin user without a password; returns their set-password link (shown once).

    Raises:
        InvalidInputError: a bad email or role.
        ConflictError: a user with this email exists already.
    """
    user = _new_user(session, email, role, "")
    audit.record(session, actor, "user.add", user.email, role=user.role)
    session.commit()
    return LINKS.issue(secret_key, user, now)


def list_users(session: Session) -> list[AdminUser]:
    return list(session.scalars(select(AdminUser).order_by(AdminUser.email)))


def find_user(session: Session, email: str) -> AdminUser:
    """Raises: NotFoundError: no admin user has this email."""
    user = session.scalar(select(AdminUser).where(AdminUser.email == email.strip().lower()))
    if user is None:
        raise NotFoundError(f"no user {email.strip().lower()!r}")
    return user


def get_user(session: Session, user_id: int) -> AdminUser:
    """Raises: NotFoundError: no admin user has this id."""
    user = session.get(AdminUser, user_id) if 0 < user_id < 2**63 else None
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    return user


def authenticate(session: Session, email: str, password: str) -> AdminUser:
    """The admin user with this email and password, if they may sign in (audited).

    Raises:
        SignInRefusedError: for every refusal alike (unknown email, wrong password, no password
            since a reset, disabled), after the same amount of hashing work.
    """
    user = session.scalar(select(AdminUser).where(AdminUser.email == email.strip().lower()))
    # The hash is verified even for an unknown email: the answer takes as long either way.
    matches = password_matches(user.password_hash if user else None, password)
    if user is None or not matches or user.disabled:
        raise SignInRefusedError("wrong email or password")
    audit.record(session, user.email, "user.login", user.email)
    session.commit()
    return user


def signed_in(session: Session, user_id: int, session_version: int) -> AdminUser | None:
    """The user a session names, if that session is still theirs (checked on every request)."""
    user = session.get(AdminUser, user_id)
    if user is None or user.disabled or user.session_version != session_version:
        return None  # signed out elsewhere, a new password, disabled or removed: the cookie is dead
    return user


def sign_out(session: Session, user: AdminUser) -> None:
    """End this session and every copy of its cookie (and the user's other sessions)."""
    user.session_version += 1
    audit.record(session, user.email, "user.logout", user.email)
    session.commit()


def change_own_password(session: Session, user: AdminUser, current: str, new: str) -> AdminUser:
    """A signed-in user's new password; every other session of theirs ends.

    The caller's own session must be re-issued for the new ``session_version``.

    Raises:
        InvalidInputError: ``current`` is not their password, or ``new`` is too short.
    """
    if not password_matches(user.password_hash, current):
        raise InvalidInputError("current_password", "is not your current password")
    user.password_hash = _checked_password(new)
    user.session_version += 1
    audit.record(session, user.email, "user.password_change", user.email)
    session.commit()
    return user


def set_password(session: Session, user: AdminUser, password: str, *, actor: str) -> AdminUser:
    """Set a user's password (an operator at the command line); their sessions end.

    Raises:
        InvalidInputError: too short.
    """
    user.password_hash = _checked_password(password)
    user.session_version += 1
    audit.record(session, actor, "user.password_set", user.email)
    session.commit()
    return user


def reset_password(
    session: Session, user: AdminUser, *, secret_key: str, actor: str, now: datetime
) -> Invitation:
    """Clear the password, end every session and earlier link; returns a new link (shown once).

    Raises:
        ConflictError: the user is disabled (enable them first), or is the last active admin.
    """
    if user.disabled:
        raise ConflictError(f"user {user.email} is disabled; enable them first")

    def change() -> None:
        user.password_hash = ""
        user.session_version += 1

    _keeping_an_admin(session, user, change)
    audit.record(session, actor, "user.reset", user.email)
    session.commit()
    return LINKS.issue(secret_key, user, now)


def read_invitation(session: Session, secret_key: str, token: str, now: datetime) -> AdminUser:
    """The user a set-password link is for, while it is unused, current and unexpired.

    Raises:
        InvitationExpiredError, InvitationInvalidError: see :meth:`LinkSigner.read`.
    """
    return LINKS.read(secret_key, token, now, lambda user_id: session.get(AdminUser, user_id))


def set_password_with_link(
    session: Session, secret_key: str, token: str, password: str, *, now: datetime
) -> AdminUser:
    """Set the password of the user a valid link is for; the link stops working.

    Raises:
        InvalidInputError: too short.
        InvitationExpiredError, InvitationInvalidError: see :func:`read_invitation`.
    """
    user = read_invitation(session, secret_key, token, now)
    user.password_hash = _checked_password(password)
    user.session_version += 1
    audit.record(session, user.email, "user.password_set", user.email)
    session.commit()
    return user


# An admin who can sign in: an invited admin, or one whose password was reset, does not count
# until they have chosen a password.
_ACTIVE_ADMIN = (
    (AdminUser.role == Role.ADMIN) & AdminUser.disabled.is_(False) & (AdminUser.password_hash != "")
)


def _keeping_an_admin(session: Session, user: AdminUser, change: Callable[[], None]) -> None:
    """Make ``change`` to ``user`` unless it leaves no active admin; then nothing changes.

    The active admins' rows are locked first (on PostgreSQL), so two admins demoting each other
    at the same moment take turns, and the count is taken after the change, inside its
    transaction (on SQLite the change's write lock orders them).

    Raises:
        ConflictError: ``user`` is the last active admin.
    """
    session.scalars(select(AdminUser.id).where(_ACTIVE_ADMIN).with_for_update()).all()
    change()
    session.flush()
    if not session.scalar(select(func.count()).select_from(AdminUser).where(_ACTIVE_ADMIN)):
        session.rollback()
        raise ConflictError(
            f"{user.email} is the last active admin: make another user an admin first",
            user=user,
        )


def set_role(session: Session, user: AdminUser, role: str, *, actor: str) -> AdminUser:
    """Give ``user`` another role; it applies to their next request.

    Raises:
        InvalidInputError: not a role.
        ConflictError: it would demote the last active admin.
    """
    new_role = parse(Role, "role", role)
    if user.role != new_role:
        old_role = user.role

        def change() -> None:
            user.role = new_role

        _keeping_an_admin(session, user, change)
        audit.record(session, actor, "user.role", user.email, role=new_role, was=old_role)
        session.commit()
    return user


def set_disabled(session: Session, user: AdminUser, disabled: bool, *, actor: str) -> AdminUser:
    """Disable (every session ends at once, sign-in is refused, links stop working) or enable.

    Raises:
        ConflictError: it would disable the last active admin.
    """
    if user.disabled != disabled:

        def change() -> None:
            user.disabled = disabled
            user.session_version += 1

        _keeping_an_admin(session, user, change)
        audit.record(session, actor, "user.disable" if disabled else "user.enable", user.email)
        session.commit()
    return user


def remove_user(session: Session, user: AdminUser, *, actor: str) -> None:
    """Remove an admin user for good (the audit log keeps what they did, by email).

    Raises:
        ConflictError: ``user`` is the last active admin.
    """
    email, role = user.email, user.role
    _keeping_an_admin(session, user, lambda: session.delete(user))
    audit.record(session, actor, "user.remove", email, role=role)
    session.commit()


def set_password_link(public_base_url: str, token: str) -> str:
    """The link to hand an admin user: on the public address, as portal links are."""
    return f"{public_base_url}/admin/set-password/{token}"
