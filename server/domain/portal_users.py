"""Portal users: people at a customer who sign in to the portal with email and password.

The invitation workflow, as vendors run it:

1. An admin adds a person by email (:func:`invite`). They get no password; the admin is shown,
   once, a set-password link valid for seven days (:mod:`server.domain.password_links`).
2. The person opens the link and chooses a password (:func:`set_password_with_link`). The link
   names the user and a fingerprint of their current password hash and session version, signed
   with the server's secret key; setting the password changes both, so the link works once.
3. An admin can disable the person (every session ends at once) or reset them
   (:func:`reset`): the password is cleared, sessions and earlier links stop working, and a new
   link is shown.

Passwords are hashed exactly as the admin users' are (:mod:`server.domain.users`). What a
signed-in person may see is every active license of their customer, and nothing else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit, emails, password_links
from server.domain.emails import MailSettings
from server.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SignInRefusedError,
)
from server.domain.models import Customer, CustomerUser, License, Product
from server.domain.password_links import LinkSigner
from server.domain.users import hash_password, normalize_email, password_matches
from server.domain.vocabulary import LicenseStatus

MIN_PASSWORD_LENGTH = 12
LINKS = LinkSigner("vigor.portal.set-password.v1")
Invitation = password_links.Invitation[CustomerUser]


def _target(user: CustomerUser) -> str:
    return f"{user.customer.slug}/{user.email}"


def get_user(session: Session, user_id: int) -> CustomerUser:
    user = session.get(CustomerUser, user_id)
    if user is None:
        raise NotFoundError(f"no portal user {user_id}")
    return user


def find_user(session: Session, email: str) -> CustomerUser:
    user = session.scalar(select(CustomerUser).where(CustomerUser.email == normalize_email(email)))
    if user is None:
        raise NotFoundError(f"no portal user {email.strip().lower()!r}")
    return user


def invite(
    session: Session,
    customer: Customer,
    email: str,
    *,
    secret_key: str,
    actor: str,
    now: datetime,
    mail: MailSettings | None = None,
) -> Invitation:
    """Add a portal user to ``customer``; returns the set-password link's token (shown once).
    With ``mail``, the link is also e-mailed to them (queued in the same transaction).

    Raises:
        InvalidInputError: ``email`` is not an email address.
        ConflictError: a portal user with this email exists already (at any customer).
    """
    email = normalize_email(email)
    if session.scalar(select(CustomerUser.id).where(CustomerUser.email == email)) is not None:
        raise ConflictError(f"portal user {email} already exists", field="email")
    user = CustomerUser(customer=customer, email=email, created_at=now)
    session.add(user)
    audit.record(session, actor, "portal_user.add", _target(user))
    session.flush()
    invitation = LINKS.issue(secret_key, user, now)
    if mail is not None:
        emails.invitation(
            session, mail, invitation, set_password_link(mail.public_base_url, invitation.token)
        )
    session.commit()
    return invitation


def reset(
    session: Session,
    user: CustomerUser,
    *,
    secret_key: str,
    actor: str,
    now: datetime,
    mail: MailSettings | None = None,
) -> Invitation:
    """Clear the password and end every session and earlier link; returns a new link's token.
    With ``mail``, the link is also e-mailed to the user (queued in the same transaction).

    Raises:
        ConflictError: the user is disabled (enable them first).
    """
    if user.disabled:
        raise ConflictError(f"portal user {user.email} is disabled; enable them first")
    user.password_hash = None
    user.session_version += 1
    audit.record(session, actor, "portal_user.reset", _target(user))
    session.flush()
    invitation = LINKS.issue(secret_key, user, now)
    if mail is not None:
        emails.password_reset(
            session, mail, invitation, set_password_link(mail.public_base_url, invitation.token)
        )
    session.commit()
    return invitation


def forgot_password(session: Session, email: str, *, mail: MailSettings, now: datetime) -> None:
    """The portal's forgot-password page: e-mail a set-password link, valid once for
    :data:`~server.domain.emails.RESET_LINK_TTL`, to the portal user with this address.

    Nothing tells whether the address is known: an unknown or disabled one gets no e-mail and
    the same silence. The password stays as it is until the link is used (someone else asking
    cannot lock the person out). Commits.
    """
    try:
        user = find_user(session, email)
    except (NotFoundError, InvalidInputError):
        return
    if user.disabled:
        return
    invitation = LINKS.issue(mail.secret_key, user, now, ttl=emails.RESET_LINK_TTL)
    emails.password_reset(
        session, mail, invitation, set_password_link(mail.public_base_url, invitation.token)
    )
    audit.record(session, user.email, "portal_user.forgot_password", _target(user))
    session.commit()


def set_disabled(
    session: Session, user: CustomerUser, disabled: bool, *, actor: str
) -> CustomerUser:
    """Disable (every session ends at once, links stop working) or enable a portal user."""
    if user.disabled != disabled:
        user.disabled = disabled
        user.session_version += 1
        action = "portal_user.disable" if disabled else "portal_user.enable"
        audit.record(session, actor, action, _target(user))
        session.commit()
    return user


def read_invitation(session: Session, secret_key: str, token: str, now: datetime) -> CustomerUser:
    """The user a set-password link is for, while it is unused, current and unexpired.

    Raises:
        InvitationExpiredError, InvitationInvalidError: see :meth:`LinkSigner.read`.
    """
    return LINKS.read(secret_key, token, now, lambda user_id: session.get(CustomerUser, user_id))


def set_password_with_link(
    session: Session, secret_key: str, token: str, password: str, *, now: datetime
) -> CustomerUser:
    """Set the password of the user a valid link is for; the link stops working.

    Raises:
        InvalidInputError: the password is shorter than :data:`MIN_PASSWORD_LENGTH`.
        InvitationExpiredError, InvitationInvalidError: see :func:`read_invitation`.
    """
    user = read_invitation(session, secret_key, token, now)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    user.session_version += 1
    user.last_login_at = now  # the link signs them in
    audit.record(session, user.email, "portal_user.password_set", _target(user))
    session.commit()
    return user


def change_own_password(
    session: Session, user: CustomerUser, current: str, new: str
) -> CustomerUser:
    """A signed-in portal user's new password; every other session of theirs ends.

    The caller's own session must be re-issued for the new ``session_version``.

    Raises:
        InvalidInputError: ``current`` is not their password (field ``current_password``), or
            ``new`` is shorter than :data:`MIN_PASSWORD_LENGTH` (field ``password``).
    """
    if not password_matches(user.password_hash, current):
        raise InvalidInputError("current_password", "is not your current password")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(new)
    user.session_version += 1
    audit.record(session, user.email, "portal_user.password_change", _target(user))
    session.commit()
    return user


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> CustomerUser:
    """The portal user with this email and password, if they may sign in.

    Raises:
        SignInRefusedError: for every refusal alike (unknown email, wrong password, no password
            yet, disabled), after the same amount of hashing work.
    """
    try:
        user = find_user(session, email)
    except (NotFoundError, InvalidInputError):
        user = None
    ok = password_matches(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise SignInRefusedError("wrong email or password")
    user.last_login_at = now
    session.commit()
    return user


def signed_in(session: Session, user_id: object, session_version: object) -> CustomerUser | None:
    """The user a portal session names, if that session is still theirs (checked per page)."""
    if not isinstance(user_id, int) or not isinstance(session_version, int):
        return None
    user = session.get(CustomerUser, user_id)
    if (
        user is None
        or user.disabled
        or user.password_hash is None
        or user.session_version != session_version
    ):
        return None  # disabled, reset, signed out elsewhere or a new password: the session ends
    return user


def sign_out(session: Session, user: CustomerUser) -> None:
    """End this session and every copy of its cookie."""
    user.session_version += 1
    session.commit()


def portal_licenses(session: Session, user: CustomerUser) -> list[License]:
    """The licenses a portal user sees: their customer's active ones, by product."""
    return list(
        session.scalars(
            select(License)
            .join(Product, License.product_id == Product.id)
            .where(License.customer_id == user.customer_id, License.status == LicenseStatus.ACTIVE)
            .order_by(Product.name, License.id)
        )
    )


def unavailable_licenses(session: Session, user: CustomerUser) -> list[License]:
    """The customer's suspended and revoked licenses, by product: listed with why, never opened."""
    return list(
        session.scalars(
            select(License)
            .join(Product, License.product_id == Product.id)
            .where(License.customer_id == user.customer_id, License.status != LicenseStatus.ACTIVE)
            .order_by(Product.name, License.id)
        )
    )


def portal_license(session: Session, user: CustomerUser, license_id: int) -> License:
    """One license a portal user may use.

    Raises:
        NotFoundError: not an active license of the user's customer (another customer's license
            is refused exactly like one that does not exist).
    """
    lic = session.get(License, license_id)
    if lic is None or lic.customer_id != user.customer_id or lic.status != LicenseStatus.ACTIVE:
        raise NotFoundError(f"no license {license_id} for {user.email}")
    return lic


def set_password_link(public_base_url: str, token: str) -> str:
    """The link to hand a portal user: on the public address, as download links are."""
    return f"{public_base_url}/portal/set-password/{token}"
