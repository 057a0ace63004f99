"""Vigor's client agent: verified self-update with atomic install and rollback.

A library first (``Agent``, the pure verifier in ``client_agent.roots`` and
``client_agent.verify``, the ``Fetcher`` seam), and the ``vigor-agent`` CLI
(``client_agent.cli``). It depends on ``cryptography`` and
``packaging`` only, speaks HTTP through urllib, and never imports the server.
"""

from __future__ import annotations

from client_agent.agent import Agent
from client_agent.config import AgentConfig, detect_platform, load_config
from client_agent.errors import (
    AgentError,
    ArchiveRefusedError,
    ArtifactError,
    BusyError,
    ConfigError,
    DowngradeError,
    DownloadError,
    DownloadExpiredError,
    ExpiredRootError,
    InstallError,
    RateLimitedError,
    ReplayError,
    ServerRefusedError,
    SignatureError,
    VerificationError,
    WrongTargetError,
)
from client_agent.fetch import Fetcher, JsonReply, UrllibFetcher
from client_agent.installer import Outcome
from client_agent.roots import TrustedRoot
from client_agent.verify import CheckAnswer, Manifest

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "ArchiveRefusedError",
    "ArtifactError",
    "BusyError",
    "CheckAnswer",
    "ConfigError",
    "DowngradeError",
    "DownloadError",
    "DownloadExpiredError",
    "ExpiredRootError",
    "Fetcher",
    "InstallError",
    "JsonReply",
    "Manifest",
    "Outcome",
    "RateLimitedError",
    "ReplayError",
    "ServerRefusedError",
    "SignatureError",
    "TrustedRoot",
    "UrllibFetcher",
    "VerificationError",
    "WrongTargetError",
    "detect_platform",
    "load_config",
]
