"""Download decisions with a fake network: expired links are renewed, a full disk is refused early."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent import Agent, AgentConfig, DownloadError, JsonReply
from client_agent.errors import DownloadExpiredError
from server.domain.trust import KeySigner, iso, sign_document
from tests.common.agents import agent_config

KEY = KeySigner(Ed25519PrivateKey.generate())
ARTIFACT = b"artifact bytes" * 100


class FakeServer:
    """Answers checks with a signed offer; the first download link it hands out has expired."""

    def __init__(self) -> None:
        self.checks = 0
        self.downloads: list[str] = []

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        return None

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        self.checks += 1
        now = datetime.now(UTC)
        manifest = sign_document(
            {
                "type": "release",
                "product": "acme-erp",
                "version": "2.0.0",
                "kind": "update",
                "severity": None,
                "published_at": iso(now - timedelta(days=1)),
                "min_from": None,
                "artifacts": {
                    "any": {
                        "filename": "a.tar.gz",
                        "size": len(ARTIFACT),
                        "sha256": hashlib.sha256(ARTIFACT).hexdigest(),
                    }
                },
            },
            [KEY],
        )
        signed = {
            "type": "check",
            "nonce": body["nonce"],
            "installation_id": body["installation_id"],
            "product": "acme-erp",
            "issued_at": iso(now),
            "expires_at": iso(now + timedelta(hours=1)),
            "entitlement": {"status": "active"},
            "renewal": None,
            "notices": [],
            "update": {
                "manifest": manifest,
                "download": {"url": f"http://x.invalid/d/{self.checks}"},
                "apply_by": None,
            },
        }
        return JsonReply(200, sign_document(signed, [KEY]), None)

    def download(
        self, url: str, part: Path, size: int, etag: str, progress: Callable[[int], None] | None
    ) -> None:
        self.downloads.append(url)
        if url.endswith("/1"):
            raise DownloadExpiredError("expired")
        part.write_bytes(ARTIFACT)


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return agent_config(tmp_path, KEY, installed_version="1.0.0")


def test_an_expired_link_is_replaced_by_checking_again(config: AgentConfig) -> None:
    server = FakeServer()
    agent = Agent(config, fetcher=server)
    path = agent.download(agent.check())
    assert path.read_bytes() == ARTIFACT
    assert server.downloads == ["http://x.invalid/d/1", "http://x.invalid/d/2"]
    assert server.checks == 2


def test_not_enough_disk_space_is_refused_before_downloading(
    config: AgentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeServer()
    agent = Agent(config, fetcher=server)
    answer = agent.check()
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100)
    )  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match="not enough free space"):
        agent.download(answer)
    assert server.downloads == []
