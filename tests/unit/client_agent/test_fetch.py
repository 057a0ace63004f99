"""The network seam on its own: credentials on redirects, proxies, schemes, errors, Retry-After."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from client_agent.errors import (
    DownloadError,
    RateLimitedError,
    ServerRefusedError,
    VerificationError,
)
from client_agent.fetch import UrllibFetcher, retry_after_seconds


class Recorder(BaseHTTPRequestHandler):
    """Answers {"ok": true} (12 bytes), or redirects /start to ``redirect_to``; remembers every
    request."""

    seen: list[tuple[str, dict[str, str]]]
    redirect_to = ""
    status = 200
    extra: dict[str, str] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def do_GET(self) -> None:
        type(self).seen.append((self.path, dict(self.headers.items())))
        if self.redirect_to and self.path == "/start":
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {"ok": True} if self.status == 200 else {"error": {"code": "x", "message": "no"}}
        ).encode()
        self.send_response(self.status)
        for name, value in self.extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(**attributes: Any) -> tuple[int, type[Recorder]]:
        handler = type("Handler", (Recorder,), {"seen": [], **attributes})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server.server_address[1], handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


LICENSE = {"Authorization": "License vgl_secret"}


@pytest.mark.parametrize(
    ("where", "kept"),
    [("another-host", False), ("another-port", False), ("same-origin", True)],
)
def test_authorization_follows_a_redirect_only_within_the_origin(
    serve: Any, tmp_path: Path, where: str, kept: bool
) -> None:
    other_port, other = serve()
    first_port, first = serve()
    first.redirect_to = {
        "another-host": f"http://localhost:{other_port}/end",
        "another-port": f"http://127.0.0.1:{other_port}/end",
        "same-origin": f"http://127.0.0.1:{first_port}/end",
    }[where]
    reply = UrllibFetcher().post_json(f"http://127.0.0.1:{first_port}/start", {}, LICENSE, 999)
    assert reply.body == {"ok": True}
    UrllibFetcher(attempts=1).download(
        f"http://127.0.0.1:{first_port}/start", tmp_path / "part", 12, "0" * 64, None, LICENSE
    )
    followed = [h for path, h in [*first.seen, *other.seen] if path == "/end"]
    assert len(followed) == 2, "both redirects were followed"
    assert all(("Authorization" in headers) is kept for headers in followed)
    assert all(h["Authorization"] == "License vgl_secret" for p, h in first.seen if p == "/start")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_non_http_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="non-HTTP"):
        UrllibFetcher().download(url, tmp_path / "part", 10, "0" * 64, None)


def test_a_redirect_to_a_non_http_url_is_refused(serve: Any) -> None:
    port, _ = serve(redirect_to="file:///etc/passwd")
    with pytest.raises(VerificationError, match="redirect to a non-HTTP URL"):
        UrllibFetcher().get_json(f"http://127.0.0.1:{port}/start", 999)


def test_an_unreachable_server_is_one_download_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=re.escape("cannot reach 127.0.0.1")):
        UrllibFetcher(timeout=1).get_json(f"http://127.0.0.1:{port}/x", 100)


@pytest.mark.parametrize(
    ("status", "extra", "error", "message"),
    [
        (429, {"Retry-After": "42"}, RateLimitedError, "busy"),
        (403, {}, ServerRefusedError, "refused this license"),
        (500, {}, DownloadError, "HTTP 500"),
        (400, {}, DownloadError, "HTTP 400"),
    ],
    ids=["429", "403", "500", "400"],
)
def test_error_statuses_become_agent_errors(
    serve: Any, status: int, extra: dict[str, str], error: type[Exception], message: str
) -> None:
    port, _ = serve(status=status, extra=extra)
    with pytest.raises(error, match=message) as raised:
        UrllibFetcher().post_json(f"http://127.0.0.1:{port}/api/v1/check", {}, LICENSE, 999)
    if isinstance(raised.value, RateLimitedError):
        assert raised.value.retry_after == 42.0


def test_a_404_root_means_no_newer_root(serve: Any) -> None:
    port, _ = serve(status=404)
    assert UrllibFetcher().get_json(f"http://127.0.0.1:{port}/api/v1/root/2.json", 999) is None


def test_a_document_larger_than_allowed_is_refused(serve: Any) -> None:
    port, _ = serve()
    with pytest.raises(VerificationError, match="more than 5 bytes"):
        UrllibFetcher().get_json(f"http://127.0.0.1:{port}/x", 5)


def test_retry_after_in_both_forms() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 25 Nov 2026 12:02:00 GMT", now=1795608000.0) == 120.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_the_configured_proxy_carries_the_requests(serve: Any) -> None:
    port, proxy = serve()
    fetcher = UrllibFetcher(proxy=f"http://127.0.0.1:{port}")
    assert fetcher.get_json("http://updates.example.invalid/api/v1/root/2.json", 100) is not None
    assert proxy.seen[0][0] == "http://updates.example.invalid/api/v1/root/2.json"


def test_https_proxy_and_no_proxy_from_the_environment(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_port, proxy = serve()
    direct_port, direct = serve()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    UrllibFetcher().get_json("http://updates.example.invalid/x", 100)
    UrllibFetcher().get_json(f"http://127.0.0.1:{direct_port}/y", 100)
    assert [path for path, _ in proxy.seen] == ["http://updates.example.invalid/x"]
    assert [path for path, _ in direct.seen] == ["/y"]
