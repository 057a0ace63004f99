"""A status file the customer carries back from an offline machine, signed by the installation.

Each installation makes its own Ed25519 key on first use (``state_dir/installation-key.pem``,
mode 0600). The server pins that key the first time it imports a status from the installation
and refuses a status signed by any other key afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from client_agent.agent import Agent
from client_agent.errors import ConfigError
from client_agent.files import write_atomic
from client_agent.roots import canonical

__all__ = [
    "export_status",
    "installation_key",
    "status_document",
]


def installation_key(state_dir: Path) -> Ed25519PrivateKey:
    """This installation's own signing key, made on first use (mode 0600)."""
    path = state_dir / "installation-key.pem"
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def status_document(agent: Agent, now: datetime) -> dict[str, Any]:
    """The signed status: installed version, previous version, the reports not yet delivered."""
    key = installation_key(agent.state_dir)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    installed = agent.installed_version()
    signed = {
        "type": "status",
        "installation_id": agent.installation_id,
        "license": hashlib.sha256(agent.config.license_key.encode()).hexdigest(),
        "product": agent.config.product,
        "platform": agent.config.platform,
        "channel": agent.config.channel,
        "installed_version": str(installed) if installed else None,
        "previous_version": agent.state.get("previous_version"),
        "reports": agent.pending_reports(),
        "exported_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "public": public,
    }
    keyid = hashlib.sha256(bytes.fromhex(public)).hexdigest()
    return {
        "signed": signed,
        "signatures": [{"keyid": keyid, "sig": key.sign(canonical(signed)).hex()}],
    }


def export_status(agent: Agent, out: Path, now: datetime) -> dict[str, Any]:
    """Write the signed status document to ``out`` (atomically); return it."""
    document = status_document(agent, now)
    write_atomic(out, json.dumps(document, indent=1).encode())
    return document
