"""Error roots (as python-tuf): untrusted data, transport, installation, configuration.

Every error carries the exit code the CLI ends with, and a one-line explanation.
"""

from __future__ import annotations

# Exit codes (documented in docs/agent.md and `vigor-agent --help`).
EXIT_OK = 0  # up to date, or the command did what was asked
EXIT_ERROR = 1  # anything unexpected
EXIT_CONFIG = 2  # bad command line or configuration
EXIT_APPLIED = 10  # an update was applied
EXIT_AVAILABLE = (
    11  # an update is available (check), or available but not yet due (update --when-due)
)
EXIT_REFUSED = 20  # untrusted data refused: signature, hash, size, nonce, rollback, expired root
EXIT_NETWORK = 30  # the server could not be reached or said to wait
EXIT_INSTALL = 40  # installing failed and was rolled back; the installed application is unchanged


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
    """A document is not signed by the keys the trusted root names."""


class ExpiredRootError(VerificationError):
    """The newest trusted root has expired (or the machine clock is wrong)."""


class ReplayError(VerificationError):
    """A check response does not echo this request's nonce or installation id, or is stale."""


class WrongTargetError(VerificationError):
    """A manifest is for another product or has no artifact for this platform."""


class DowngradeError(VerificationError):
    """The offered version is not newer than the installed one."""


class ArtifactError(VerificationError):
    """Downloaded bytes do not match the manifest's size or SHA-256."""


class DownloadError(AgentError):
    """The network failed (unreachable, timed out, refused, or asked to wait)."""

    exit_code = EXIT_NETWORK


class DownloadExpiredError(DownloadError):
    """The download URL expired: check again for a fresh one."""


class ServerRefusedError(AgentError):
    """The server answered with an error about this license (suspended, revoked, ...)."""

    exit_code = EXIT_REFUSED


class InstallError(AgentError):
    """Installing failed; the previous version is running again."""

    exit_code = EXIT_INSTALL
