"""Values the database keeps encrypted: with a key derived from the instance's secret key
(``VIGOR_SECRET_KEY`` or the instance directory's ``secret_key``), so a copy of the database
alone — a backup, a dump — does not give them away.

Each use has its own derived key (``purpose``): an idempotency answer holds license keys, a
webhook endpoint's signing secret lets anyone forge Vigor's deliveries. Fernet (AES-128-CBC and
HMAC-SHA256) from ``cryptography``; a token that does not decrypt — the secret key changed
since — raises ``cryptography.fernet.InvalidToken``.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet


def box(secret_key: str, purpose: str) -> Fernet:
    """The cipher of ``purpose`` (``"idempotency"``, ``"webhook-secret"``) on this instance."""
    digest = hashlib.sha256(f"vigor.{purpose}.v1:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))
