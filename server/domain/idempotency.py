"""Idempotency keys for the admin API's POSTs: a client that retries a request (a billing
webhook delivered twice, a timeout) sends the same ``Idempotency-Key`` and gets the first
answer again instead of a second renewal.

The key is reserved (committed) before the request runs, so two copies sent at once cannot both
run: the second finds the reservation and is told the first is in progress. The answer is stored
once the request is done; an answer of 5xx is not kept, so the client may retry.

Stored answers are encrypted with a key derived from the instance's secret key
(``server/domain/sealed.py``): the answer to issuing a license holds the license key, which the
database otherwise never holds in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.domain import sealed
from server.domain.errors import ConflictError, DomainError, InvalidInputError
from server.domain.models import IdempotencyKey

KEEP_FOR = timedelta(hours=48)  # documented as "at least 24 hours"
MAX_KEY_LENGTH = 255


class KeyReusedError(DomainError):
    """The same key with another request: a client bug, never replayed."""

    code = "idempotency_key_reused"


class KeyInProgressError(ConflictError):
    code = "idempotency_key_in_progress"


@dataclass(frozen=True)
class Stored:
    status: int
    body: str
    headers: dict[str, Any]


def _box(secret_key: str) -> Fernet:
    return sealed.box(secret_key, "idempotency")


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInputError(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def reserve(
    session: Session, token_id: int, key: str, fingerprint: str, now: datetime, *, secret_key: str
) -> Stored | int:
    """The stored answer to replay, or the id of a new reservation (committed) to complete.

    Raises:
        KeyReusedError: the key was used with another request.
        KeyInProgressError: the first request with this key has not finished.
    """
    check_key(key)
    # Old keys go as new ones come (every token's: one indexed range delete).
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP_FOR))
    existing = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.token_id == token_id, IdempotencyKey.key == key)
    )
    if existing is None:
        row = IdempotencyKey(token_id=token_id, key=key, fingerprint=fingerprint, created_at=now)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same key, reserved by a request running at this moment
            session.rollback()
            raise KeyInProgressError(
                "a request with this Idempotency-Key is in progress; retry later"
            ) from None
        return row.id
    session.commit()
    if existing.fingerprint != fingerprint:
        raise KeyReusedError(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    if existing.status is None or existing.body is None:
        raise KeyInProgressError("a request with this Idempotency-Key is in progress; retry later")
    try:
        body = _box(secret_key).decrypt(existing.body.encode()).decode()
    except InvalidToken:  # the instance's secret key changed since: the answer cannot be read
        raise KeyInProgressError(
            "the answer stored for this Idempotency-Key cannot be read; use a new key"
        ) from None
    return Stored(existing.status, body, dict(existing.headers))


def complete(
    session: Session,
    reservation: int,
    status: int,
    body: str,
    headers: dict[str, str],
    *,
    secret_key: str,
) -> None:
    """Store the answer to replay (a 5xx answer frees the key instead: the retry runs)."""
    session.rollback()  # whatever the failed request left (its change was committed or not)
    row = session.get(IdempotencyKey, reservation)
    if row is None:
        return
    if status >= 500:
        session.delete(row)
    else:
        row.status, row.headers = status, headers
        row.body = _box(secret_key).encrypt(body.encode()).decode()
    session.commit()


def purge(session: Session, now: datetime) -> int:
    """Forget keys older than KEEP_FOR (every token's); how many were removed."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP_FOR)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
