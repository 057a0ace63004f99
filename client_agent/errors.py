"""Error roots (as python-tuf): untrusted data, transport, installation, configuration.

Every error carries the exit code the CLI ends with, and explains itself in one line: the CLI
prints ``str(error)`` and nothing else (a traceback only with ``--verbose``).
"""

from __future__ import annotations

# Exit codes (documented in docs/agent.md and `vigor-agent --help`).
EXIT_OK = 0  # up to date, or the command did what was asked
EXIT_ERROR = 1  # anything unexpected
EXIT_CONFIG = 2  # bad command line or configuration
EXIT_APPLIED = 10  # an update was applied (or rolled back on request)
EXIT_AVAILABLE = 11  # an update is available (check), or available but not yet due (--when-due)
EXIT_REFUSED = 20  # untrusted data refused: signature, hash, size, nonce, rollback, expired root
EXIT_LICENSE = 21  # the server refused this license (suspended, revoked, not entitled, ...)
EXIT_NETWORK = 30  # the server could not be reached, or asked to wait (Retry-After)
EXIT_INSTALL = 40  # installing failed; the previous version runs again
EXIT_BUSY = 50  # another vigor-agent is working on this installation right now


class AgentError(Exception):
    """Base of every error the agent explains in one line."""

    exit_code = EXIT_ERROR


class ConfigError(AgentError):
    """A configuration value is missing or wrong; the message names it."""

    exit_code = EXIT_CONFIG


class VerificationError(AgentError):
    """Data from the network (or a bundle) is not trustworthy; nothing was changed."""

    exit_code = EXIT_REFUSED


class SignatureError(VerificationError):
    """A document is not signed by the threshold of keys the trusted root names for its role."""


class ExpiredRootError(VerificationError):
    """The newest trusted root has expired (or the machine clock is wrong)."""


class ReplayError(VerificationError):
    """A check response does not echo this request's nonce or installation id, or is stale."""


class WrongTargetError(VerificationError):
    """A manifest is for another product, has no artifact for this platform, or cannot apply."""


class DowngradeError(VerificationError):
    """The offered version is not newer than the installed one."""


class ArtifactError(VerificationError):
    """Downloaded bytes do not match the manifest's size or SHA-256, or arrived encoded."""


class DownloadError(AgentError):
    """The network failed (unreachable, timed out, broke off, or the server failed).

    ``status`` is the HTTP status when the server answered with an error, else None;
    ``retryable`` says whether trying again soon may help.
    """

    exit_code = EXIT_NETWORK

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class DownloadExpiredError(DownloadError):
    """The download URL expired (410): check again for a fresh one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=410, retryable=False)


class RateLimitedError(DownloadError):
    """The server answered 429: do not contact it again for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, status=429, retryable=False)
        self.retry_after = retry_after


class ServerRefusedError(AgentError):
    """The server refused this license (suspended, revoked, other product, not entitled)."""

    exit_code = EXIT_LICENSE


class InstallError(AgentError):
    """Installing failed; the previous version is running again.

    ``code`` is the short machine code reported to the server (``health_check_failed``, ...).
    """

    exit_code = EXIT_INSTALL

    def __init__(self, message: str, *, code: str = "install_failed") -> None:
        super().__init__(message)
        self.code = code


class BusyError(AgentError):
    """Another agent process holds this installation's lock."""

    exit_code = EXIT_BUSY


class ArchiveRefusedError(InstallError):
    """The artifact holds an entry that could write outside its version directory."""

    def __init__(self, message: str, code: str = "archive_refused") -> None:
        super().__init__(message, code=code)


class SuspiciousArchiveError(ArchiveRefusedError):
    """The artifact would unpack to far more than its size or than any release should."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="archive_suspicious")
