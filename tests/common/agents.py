"""Agent configurations for tests that drive the library directly (with a fake network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from client_agent import AgentConfig
from server.domain.trust import KeySigner, build_root, sign_document


def agent_config(tmp_path: Path, key: KeySigner, **overrides: Any) -> AgentConfig:
    """A config whose shipped root (valid until 2099) names ``key`` for every role."""
    root = sign_document(
        build_root(1, datetime(2099, 1, 1, tzinfo=UTC), [key.public], [key.public]), [key]
    )
    (tmp_path / "root.json").write_text(json.dumps(root))
    options: dict[str, Any] = {
        "server_url": "http://updates.invalid",
        "license_key": "vgl_x",
        "product": "acme-erp",
        "install_dir": tmp_path / "app",
        "state_dir": tmp_path / "state",
        "trusted_root": tmp_path / "root.json",
        **overrides,
    }
    return AgentConfig(**options)
