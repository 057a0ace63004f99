"""Domain errors: they carry what they are about, never an HTTP status (server.web.errors maps them)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain makes; ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class InvalidInputError(DomainError):
    """A value given by the caller is not acceptable; ``field`` names it."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class NotFoundError(DomainError):
    code = "not_found"


class ConflictError(DomainError):
    """The request contradicts what exists (a duplicate version, a published release edited)."""

    code = "conflict"


class StorageUnavailableError(DomainError):
    """The artifact store failed; nothing was published."""

    code = "storage_unavailable"


class SigningError(DomainError):
    """No usable signing key; nothing was published."""

    code = "signing_unavailable"


class LicenseMissingError(DomainError):
    code = "license_missing"


class LicenseUnknownError(DomainError):
    code = "license_unknown"


class LicenseSuspendedError(DomainError):
    code = "license_suspended"


class LicenseRevokedError(DomainError):
    code = "license_revoked"


class WrongProductError(DomainError):
    code = "wrong_product"


class InstallationLimitError(DomainError):
    code = "installation_limit"


class NotEntitledError(DomainError):
    code = "not_entitled"


class DownloadExpiredError(DomainError):
    code = "download_expired"


class DownloadInvalidError(DomainError):
    code = "download_invalid"


class DownloadLicenseRequiredError(DownloadInvalidError):
    """A download link presented without the license it was handed to."""

    code = "download_license_required"


class DownloadWrongLicenseError(DownloadInvalidError):
    """A download link presented with another license than the one it was handed to."""

    code = "download_wrong_license"


class SignInRefusedError(DomainError):
    """Wrong email or password (deliberately not saying which, or whether the email exists)."""

    code = "sign_in_refused"


class InvitationInvalidError(DomainError):
    """A set-password link that was tampered with, already used, or replaced by a newer one."""

    code = "invitation_invalid"


class InvitationExpiredError(DomainError):
    code = "invitation_expired"
