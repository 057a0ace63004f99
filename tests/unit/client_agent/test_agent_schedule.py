"""Retry-After is obeyed across runs, without contacting the server early; jitter stays in bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent import Agent, AgentConfig, DownloadError, JsonReply
from server.domain.trust import KeySigner
from tests.common.agents import agent_config


class BusyServer:
    """A fake network: no newer root, and a check answered 429 with Retry-After."""

    def __init__(self) -> None:
        self.posts = 0

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        return None

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        self.posts += 1
        return JsonReply(429, None, 120.0)

    def download(
        self, url: str, part: Path, size: int, etag: str, progress: Callable[[int], None] | None
    ) -> None:
        raise AssertionError("no download expected")


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return agent_config(tmp_path, KeySigner(Ed25519PrivateKey.generate()), check_interval=3600)


def test_retry_after_is_obeyed_across_runs(config: AgentConfig) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    server = BusyServer()
    agent = Agent(config, fetcher=server, clock=lambda: now)
    with pytest.raises(DownloadError, match="asked to wait"):
        agent.check()
    assert server.posts == 1
    later = Agent(config, fetcher=server, clock=lambda: now + timedelta(seconds=60))
    with pytest.raises(DownloadError, match="asked to wait until"):
        later.check()
    assert server.posts == 1, "not contacted before Retry-After"
    assert later.next_check_delay() >= 60
    after = Agent(config, fetcher=server, clock=lambda: now + timedelta(seconds=200))
    with pytest.raises(DownloadError):
        after.check()
    assert server.posts == 2, "contacted again once the wait is over"


def test_check_interval_has_jitter_within_ten_percent(config: AgentConfig) -> None:
    agent = Agent(config, fetcher=BusyServer())
    delays = {round(agent.next_check_delay()) for _ in range(50)}
    assert len(delays) > 1
    assert all(3240 <= d <= 3960 for d in delays)


def test_installation_id_is_made_once_and_kept(config: AgentConfig) -> None:
    first = Agent(config, fetcher=BusyServer()).installation_id
    assert first == Agent(config, fetcher=BusyServer()).installation_id
    assert len(first) >= 16


def test_configured_proxy_carries_the_requests(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            seen.append(self.path)  # a proxy sees the absolute URL
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from client_agent.fetch import UrllibFetcher

        fetcher = UrllibFetcher(proxy=f"http://127.0.0.1:{server.server_address[1]}")
        assert (
            fetcher.get_json("http://updates.example.invalid/api/v1/root/2.json", 100) is not None
        )
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["http://updates.example.invalid/api/v1/root/2.json"]
