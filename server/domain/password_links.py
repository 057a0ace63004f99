"""Set-password links, for portal users and admin users alike.

A link's token names the person and a fingerprint of their current password hash and session
version, and says until when it is valid; it is signed with the server's secret key under a salt
of its own per kind of person, so a portal link never opens an admin account. Setting the
password changes the fingerprint, and so does anything that bumps the session version (a reset,
disable, sign-out): the link then works no more. Tokens are shown once and stored nowhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from itsdangerous import BadSignature, URLSafeSerializer

from server.domain.errors import InvitationExpiredError, InvitationInvalidError
from server.domain.models import AdminUser, CustomerUser

INVITATION_TTL = timedelta(days=7)


U = TypeVar("U", AdminUser, CustomerUser)  # whom a link is for


@dataclass(frozen=True)
class Invitation(Generic[U]):
    """A set-password link's token, shown once; it is not stored anywhere."""

    user: U
    token: str
    expires_at: datetime


def _fingerprint(user: AdminUser | CustomerUser) -> str:
    """Changes whenever the password or the session version does: links then stop working."""
    material = f"{user.id}:{user.session_version}:{user.password_hash or ''}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class LinkSigner:
    """Issues and reads the set-password links of one kind of person (one salt)."""

    def __init__(self, salt: str) -> None:
        self.salt = salt

    def _serializer(self, secret_key: str) -> URLSafeSerializer:
        return URLSafeSerializer(secret_key, salt=self.salt)

    def issue(
        self, secret_key: str, user: U, now: datetime, ttl: timedelta = INVITATION_TTL
    ) -> Invitation[U]:
        """A new link for ``user``, valid for ``ttl`` (:data:`INVITATION_TTL`) from ``now``."""
        expires_at = now + ttl
        token = self._serializer(secret_key).dumps(
            [user.id, _fingerprint(user), int(expires_at.timestamp())]
        )
        return Invitation(user, token if isinstance(token, str) else token.decode(), expires_at)

    def read(
        self, secret_key: str, token: str, now: datetime, load: Callable[[int], U | None]
    ) -> U:
        """The person a link is for (``load`` finds them by id), while it is unused, current
        and unexpired.

        Raises:
            InvitationExpiredError: older than :data:`INVITATION_TTL`.
            InvitationInvalidError: tampered with, used already, replaced by a newer link, of
                another kind, or the person is disabled or gone.
        """
        try:
            user_id, fingerprint, expires = self._serializer(secret_key).loads(token)
        except (BadSignature, ValueError, TypeError):
            raise InvitationInvalidError("this link is not valid") from None
        if not isinstance(user_id, int) or not isinstance(expires, int):
            raise InvitationInvalidError("this link is not valid")
        user = load(user_id)
        if user is None or user.disabled or fingerprint != _fingerprint(user):
            raise InvitationInvalidError("this link is not valid or was used already", user=user)
        if now >= datetime.fromtimestamp(expires, UTC):
            raise InvitationExpiredError("this link has expired", user=user)
        return user
