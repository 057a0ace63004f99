"""Vigor's client agent: verified self-update with atomic install and rollback.

A library first (``Agent``, the pure verifier in ``verify``), and the ``vigor-agent`` CLI. It
depends on ``cryptography`` and ``packaging`` only and never imports the server.
"""

from __future__ import annotations

from client_agent.agent import Agent, Outcome
from client_agent.config import AgentConfig, detect_platform, load_config
from client_agent.errors import (
    AgentError,
    ArtifactError,
    ConfigError,
    DowngradeError,
    DownloadError,
    ExpiredRootError,
    InstallError,
    ReplayError,
    ServerRefusedError,
    SignatureError,
    VerificationError,
    WrongTargetError,
)
from client_agent.fetch import Fetcher, JsonReply, UrllibFetcher
from client_agent.verify import CheckAnswer, Manifest, TrustedRoot

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "ArtifactError",
    "CheckAnswer",
    "ConfigError",
    "DowngradeError",
    "DownloadError",
    "ExpiredRootError",
    "Fetcher",
    "InstallError",
    "JsonReply",
    "Manifest",
    "Outcome",
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
