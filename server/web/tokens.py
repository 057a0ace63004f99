"""Download tokens: short-lived, bound to one license and one artifact, signed by the server."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from server.domain.errors import DownloadExpiredError, DownloadInvalidError

SALT = "vigor.download.v1"


@dataclass(frozen=True)
class DownloadGrant:
    license_id: int
    artifact_id: int
    patch_id: int | None = None  # a delta patch to the artifact instead of the artifact


@functools.lru_cache(maxsize=8)  # a check makes one or two tokens: keep the derived keys
def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, grant: DownloadGrant) -> str:
    return _serializer(secret_key).dumps([grant.license_id, grant.artifact_id, grant.patch_id or 0])


def read_token(secret_key: str, token: str, max_age: int) -> DownloadGrant:
    """The grant inside ``token``; expired and tampered tokens are refused."""
    try:
        license_id, artifact_id, patch_id = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        raise DownloadExpiredError(
            "this download link has expired; check for updates again"
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise DownloadInvalidError("this download link is not valid") from None
    if not all(isinstance(value, int) for value in (license_id, artifact_id, patch_id)):
        raise DownloadInvalidError("this download link is not valid")
    return DownloadGrant(license_id, artifact_id, patch_id or None)
