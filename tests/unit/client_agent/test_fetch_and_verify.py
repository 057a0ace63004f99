"""The agent's network seam and verifier on their own: credentials, schemes, clocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_agent.errors import DownloadError, ExpiredRootError, VerificationError
from client_agent.fetch import UrllibFetcher
from client_agent.verify import check_root_fresh, trust_initial_root
from server.domain.trust import KeySigner, build_root, sign_document


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    redirect_to = ""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        type(self).seen.append(dict(self.headers.items()))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler], host: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, type[Recorder], type[Recorder]]]:
    class Other(Recorder):
        seen: list[dict[str, str]] = []

    other = serve(Other, "127.0.0.1")
    other_url = f"http://localhost:{other.server_address[1]}"  # another host name: another origin

    class First(Recorder):
        seen: list[dict[str, str]] = []
        redirect_to = other_url

    first = serve(First, "127.0.0.1")
    yield f"http://127.0.0.1:{first.server_address[1]}", First, Other
    for server in (first, other):
        server.shutdown()
        server.server_close()


def test_authorization_is_never_sent_to_another_host_on_redirect(two_hosts) -> None:  # type: ignore[no-untyped-def]
    url, first, other = two_hosts
    reply = UrllibFetcher().post_json(
        url + "/api/v1/check", {"x": 1}, {"Authorization": "License vgl_secret"}, 4096
    )
    assert reply.body == {"ok": True}
    assert first.seen[0]["Authorization"] == "License vgl_secret"
    assert other.seen, "the redirect was followed"
    assert all("Authorization" not in headers for headers in other.seen)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_non_http_urls_are_refused(url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationError, match="non-HTTP"):
        UrllibFetcher().download(url, tmp_path / "part", 10, "0" * 64, None)


def test_unreachable_server_is_one_download_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot reach"):
        UrllibFetcher(connect_timeout=1, read_timeout=1).get_json(f"http://127.0.0.1:{port}/x", 100)


def expired_root(expires: datetime) -> dict[str, Any]:
    key = KeySigner(Ed25519PrivateKey.generate())
    return sign_document(build_root(1, expires, [key.public], [key.public]), [key])


@pytest.mark.parametrize(
    ("now", "hint"),
    [
        (datetime(1970, 1, 2, tzinfo=UTC), "cannot be right: set the clock"),
        (datetime(2040, 1, 1, tzinfo=UTC), "far ahead: check it"),
        (datetime(2026, 6, 2, tzinfo=UTC), ""),
    ],
    ids=["clock-in-1970", "clock-in-2040", "really-expired"],
)
def test_expired_root_message_says_when_the_clock_looks_wrong(now: datetime, hint: str) -> None:
    root = trust_initial_root(expired_root(datetime(2026, 6, 1, tzinfo=UTC)))
    with pytest.raises(ExpiredRootError) as refused:
        check_root_fresh(root, now)
    assert hint in str(refused.value)
    if now.year > 2000:
        assert "expired on 2026-06-01" in str(refused.value)
    check_root_fresh(root, datetime(2026, 6, 1, tzinfo=UTC) - timedelta(seconds=1))
