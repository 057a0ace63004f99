"""The network seam on its own: credentials on redirects, proxies, schemes, errors, Retry-After."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
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
    with pytest.raises(DownloadError, match=re.escape("cannot connect to 127.0.0.1")):
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


# --------------------------------------------------------------------------- deadlines


class Scripted:
    """A raw TCP server that answers every request with ``script``: (bytes, pause) steps, so
    that a status line, headers or a body can arrive one byte at a time."""

    def __init__(self, script: list[tuple[bytes, float]]) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            try:
                for data, pause in self.script:
                    conn.sendall(data)
                    time.sleep(pause)
            except OSError:
                return  # the agent hung up

    def close(self) -> None:
        self.sock.close()


def trickled(data: bytes, pause: float) -> list[tuple[bytes, float]]:
    return [(data[i : i + 1], pause) for i in range(len(data))]


def head(length: int, status: str = "200 OK", kind: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(script: list[tuple[bytes, float]]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


BODY = json.dumps({"signed": {"type": "check", "padding": "x" * 200}}).encode()


@pytest.mark.parametrize(
    "script",
    [
        [(head(len(BODY)), 0), *trickled(BODY, 0.1)],  # the body, one byte per 0.1 s
        trickled(head(len(BODY)), 0.1),  # the status line and headers, likewise
    ],
    ids=["body", "headers"],
)
def test_a_trickled_document_is_cut_at_its_deadline(scripted: Any, script: Any) -> None:
    server = scripted(script)
    fetcher = UrllibFetcher(timeout=5, document_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(
        DownloadError, match=f"timed out while reading from 127.0.0.1:{server.port}"
    ):
        fetcher.post_json(server.url + "/api/v1/check", {}, LICENSE, 4096)
    assert time.monotonic() - started < 2.0, "cut at the deadline, not at the idle timeout"


def test_a_document_within_its_deadline_is_read_in_small_pieces(scripted: Any) -> None:
    server = scripted([(head(len(BODY)), 0), (BODY[:100], 0.3), (BODY[100:], 0)])
    reply = UrllibFetcher(document_seconds=2.0).get_json(server.url + "/x", 4096)
    assert reply is not None and reply.body["signed"]["type"] == "check"


def test_a_trickled_download_is_cut_at_its_total_deadline(scripted: Any, tmp_path: Path) -> None:
    data = b"a" * 1000
    server = scripted(
        [(head(len(data), kind="application/octet-stream"), 0), *trickled(data, 0.05)]
    )
    fetcher = UrllibFetcher(timeout=5, total_seconds=1.0, min_rate=1e6, stall_seconds=60)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="did not finish within 1 s") as raised:
        fetcher.download(server.url + "/a", tmp_path / "part", len(data), "0" * 64, None)
    assert time.monotonic() - started < 2.0
    assert raised.value.exit_code == 30
    assert 0 < (tmp_path / "part").stat().st_size < len(data), "what came is kept for a resume"


def test_a_download_slower_than_the_minimum_rate_has_stalled(scripted: Any, tmp_path: Path) -> None:
    data = b"a" * 1000
    server = scripted(
        [(head(len(data), kind="application/octet-stream"), 0), *trickled(data, 0.05)]
    )
    fetcher = UrllibFetcher(
        timeout=5, attempts=1, total_seconds=60, min_rate=100.0, stall_seconds=0.5
    )
    started = time.monotonic()
    with pytest.raises(DownloadError, match="stalled"):
        fetcher.download(server.url + "/a", tmp_path / "part", len(data), "0" * 64, None)
    assert time.monotonic() - started < 1.5


def test_the_download_deadline_grows_with_the_size() -> None:
    fetcher = UrllibFetcher(total_seconds=3600, min_rate=32768)
    assert fetcher.download_seconds(10_000) == 3600
    # 1 GB at the minimum rate of 256 kbit/s; a 2 Mbit/s link needs about 70 minutes of it.
    assert fetcher.download_seconds(10**9) == pytest.approx(30518, rel=0.01)


def test_a_download_complete_within_its_deadline_is_accepted(scripted: Any, tmp_path: Path) -> None:
    data = b"abcdefghij" * 100
    server = scripted([(head(len(data), kind="application/octet-stream"), 0), (data, 0)])
    fetcher = UrllibFetcher(total_seconds=0.5, min_rate=1e6)

    def slow_disk(written: int) -> None:
        if written == len(data):
            time.sleep(0.7)  # handling the last piece runs past the deadline

    digest = fetcher.download(server.url + "/a", tmp_path / "part", len(data), "0" * 64, slow_disk)
    assert digest == hashlib.sha256(data).hexdigest()


def test_an_html_error_page_is_named_not_shown(scripted: Any) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
    server = scripted([(head(len(page), "502 Bad Gateway", "text/html") + page, 0)])
    with pytest.raises(DownloadError) as raised:
        UrllibFetcher().get_json(server.url + "/api/v1/root/2.json", 4096)
    assert str(raised.value) == (
        f"GET /api/v1/root/2.json failed: HTTP 502 from 127.0.0.1:{server.port}"
    )


def test_an_error_names_the_host_that_answered_after_a_redirect(serve: Any, scripted: Any) -> None:
    page = b"<html>Service Unavailable</html>"
    storage = scripted([(head(len(page), "503 Service Unavailable", "text/html") + page, 0)])
    port, _ = serve(redirect_to=f"http://localhost:{storage.port}/blob")
    with pytest.raises(DownloadError, match=f"HTTP 503 from localhost:{storage.port}$"):
        UrllibFetcher().get_json(f"http://127.0.0.1:{port}/start", 4096)


@pytest.mark.parametrize(
    ("url", "script"),
    [
        # A plain-HTTP request through the proxy, whose answer trickles.
        ("http://updates.example.invalid/x", [(head(len(BODY)), 0), *trickled(BODY, 0.1)]),
        # HTTPS through the proxy: its answer to CONNECT trickles, before any TLS.
        (
            "https://updates.example.invalid/x",
            trickled(b"HTTP/1.1 200 Connection established\r\n\r\n", 0.1),
        ),
    ],
    ids=["http", "https-connect"],
)
def test_a_trickling_proxy_is_cut_at_the_deadline_too(scripted: Any, url: str, script: Any) -> None:
    proxy = scripted(script)
    fetcher = UrllibFetcher(timeout=5, proxy=proxy.url, document_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        fetcher.get_json(url, 4096)
    assert time.monotonic() - started < 2.0
