"""Secret keys shown once: license keys and API tokens. Only a SHA-256 is ever stored.

The keys carry 160+ bits of randomness, so a plain SHA-256 index is safe to look them up by;
the final comparison is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(prefix: str) -> str:
    """A fresh secret such as ``vgl_3q9...`` (prefix tells a reader what kind of key it is)."""
    return f"{prefix}_{secrets.token_urlsafe(30)}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def display_prefix(secret: str) -> str:
    """The part of a key that may be shown in lists to tell keys apart: its first 10
    characters, and never more than a third of it (a key imported from another system may be
    short)."""
    return secret[: min(10, len(secret) // 3)]
