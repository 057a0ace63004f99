"""Download links: tokens that are short-lived, bound to one license and one artifact, and signed
by the server (the capability in the URL a check or the portal hands out)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from server.domain.errors import DownloadExpiredError, DownloadInvalidError

SALT = "vigor.download.v1"


@dataclass(frozen=True)
class DownloadGrant:
    license_id: int
    artifact_id: int
    patch_id: int | None = None  # a delta patch to the artifact instead of the artifact


class _Signer(TimestampSigner):
    """itsdangerous' timestamp signer, its derived key computed once instead of per token
    (the same key, so the same tokens)."""

    @functools.cached_property
    def _derived_key(self) -> bytes:
        return super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._derived_key if secret_key is None else super().derive_key(secret_key)


@functools.lru_cache(maxsize=8)  # a check makes one or two tokens: build these once
def _serializer(secret_key: str) -> tuple[URLSafeTimedSerializer, TimestampSigner]:
    serializer = URLSafeTimedSerializer(secret_key, salt=SALT, signer=_Signer)
    return serializer, serializer.make_signer()  # type: ignore[return-value]


def make_token(secret_key: str, grant: DownloadGrant) -> str:
    """What ``URLSafeTimedSerializer.dumps`` makes, with the signer kept between tokens.

    The payload is its compact JSON in URL-safe base64, as ``dump_payload`` writes it; that
    also tries zlib on every payload, which never wins on three integers.
    """
    _, signer = _serializer(secret_key)
    # json.dumps(..., separators=(",", ":")) of three integers, without its 5 µs of setup.
    payload = f"[{int(grant.license_id)},{int(grant.artifact_id)},{int(grant.patch_id or 0)}]"
    return signer.sign(base64_encode(payload)).decode()


def read_token(secret_key: str, token: str, max_age: int) -> DownloadGrant:
    """The grant inside ``token``; expired and tampered tokens are refused."""
    try:
        license_id, artifact_id, patch_id = _serializer(secret_key)[0].loads(token, max_age=max_age)
    except SignatureExpired:
        raise DownloadExpiredError(
            "this download link has expired; check for updates again"
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise DownloadInvalidError("this download link is not valid") from None
    if not all(isinstance(value, int) for value in (license_id, artifact_id, patch_id)):
        raise DownloadInvalidError("this download link is not valid")
    return DownloadGrant(license_id, artifact_id, patch_id or None)
