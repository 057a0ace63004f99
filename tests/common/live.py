"""A real Vigor server process for end-to-end tests, and a tampering proxy in front of it.

The agent under test talks to the proxy; the proxy forwards to gunicorn serving Vigor and, when
told to, misbehaves the way a hostile network or a compromised mirror would.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``vigor`` commands and a gunicorn process over one instance directory."""

    def __init__(self, base: Path, public_url: str) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VIGOR_INSTANCE_DIR": str(base / "instance"),
            "VIGOR_STORAGE_ROOT": str(base / "releases"),
            "VIGOR_PUBLIC_URL": public_url,
            "VIGOR_RATE_LIMIT_CHECK": "100000/minute",
            "VIGOR_RATE_LIMIT_CHECK_ADDRESS": "100000/minute",
            # Tests sign in often from one address as one account (the throttle tests set theirs).
            "VIGOR_RATE_LIMIT_LOGIN": "100000/minute",
            "VIGOR_RATE_LIMIT_LOGIN_ACCOUNT": "100000/minute",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def vigor(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            cwd=self.base,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, *, vigor_serve: bool = False) -> None:
        """Two workers: gunicorn on ``wsgi:app``, or ``vigor serve`` (its threaded workers)."""
        gunicorn = ["-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{self.port}"]
        gunicorn += ["--log-level", "warning", "wsgi:app"]
        serve = ["-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        serve += ["--workers", "2"]
        self.proc = subprocess.Popen(
            [sys.executable, *(serve if vigor_serve else gunicorn)],
            cwd=self.base if vigor_serve else ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # a loaded machine; `vigor serve` starts two interpreters
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the Vigor server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            self.proc.wait(timeout=15)

    def start_worker(self, log: Path) -> subprocess.Popen[bytes]:
        """A real ``vigor worker`` process on this instance (its output in ``log``)."""
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker", "--workers", "2"],
                cwd=self.base,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


class TamperingProxy:
    """Forwards to ``upstream``; ``self.mode`` selects a misbehaviour (None: honest)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstream = ""
        self.mode: str | None = None
        self.check_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        # Rewrites the JSON body of POST /api/v1/check on its way to the server.
        self.request_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        # Another license key to present instead of the agent's, on paths with this prefix.
        self.replace_license: tuple[str, str] | None = None  # (path prefix, key)
        # Answers on paths with this prefix go out one byte every ``trickle_interval`` seconds
        # (headers whole; the body trickled). "/api/v1/root/" trickles root 1 for any root.
        self.trickle: str | None = None
        self.trickle_interval = 0.2
        self.recorded_check: bytes | None = None
        self.seen_headers: list[dict[str, str]] = []
        # Every answer sent to the agent: (path, bytes of status line and headers, body bytes).
        self.sent: list[tuple[str, int, int]] = []
        # Every request received: (method, path, body bytes).
        self.received: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(ProxyHandler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProxyHandler(BaseHTTPRequestHandler):
    owner: TamperingProxy
    protocol_version = "HTTP/1.1"
    _head_bytes = 0
    _headers_buffer: list[bytes]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._forward("GET", None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self._forward("POST", self.rfile.read(length))

    def _forward(self, method: str, body: bytes | None) -> None:
        proxy = self.owner
        proxy.seen_headers.append(dict(self.headers.items()))
        proxy.received.append((method, self.path, len(body or b"")))
        skip = {"host", "connection", "content-length"}  # http.client sets the length it sends
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        if proxy.mode == "ignore-range":
            headers.pop("Range", None)
            headers.pop("If-Range", None)
        if proxy.request_hook is not None and self.path == "/api/v1/check" and body:
            body = json.dumps(proxy.request_hook(json.loads(body))).encode()
        if proxy.replace_license and self.path.startswith(proxy.replace_license[0]):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"License {proxy.replace_license[1]}"
        path = self.path
        trickled = proxy.trickle is not None and path.startswith(proxy.trickle)
        if trickled and path.startswith("/api/v1/root/"):
            path = "/api/v1/root.json"  # a real root file, whatever version was asked for
        conn = http.client.HTTPConnection(proxy.upstream.removeprefix("http://"), timeout=30)
        conn.request(method, path, body=body, headers=headers)
        upstream = conn.getresponse()
        data = upstream.read()
        out_headers = {
            k: v
            for k, v in upstream.getheaders()
            if k.lower() not in {"connection", "transfer-encoding", "content-length"}
        }
        status = upstream.status
        conn.close()
        if trickled:
            self._trickle(status, out_headers, data)
            return
        if self.path == "/api/v1/check" and status == 200:
            data = self._tamper_check(data)
        elif self.path.startswith("/api/v1/download/") and status in (200, 206):
            if proxy.mode == "endless":
                self._endless(status, out_headers, data)
                return
            data, out_headers = self._tamper_download(data, out_headers)
        self._send(status, out_headers, data)

    def _tamper_check(self, data: bytes) -> bytes:
        proxy = self.owner
        if proxy.mode == "replay":
            if proxy.recorded_check is None:
                proxy.recorded_check = data
                return data
            return proxy.recorded_check
        if proxy.check_hook is not None:
            return json.dumps(proxy.check_hook(json.loads(data))).encode()
        return data

    def _tamper_download(
        self, data: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        mode = self.owner.mode
        is_patch = ".delta" in headers.get("Content-Disposition", "")
        if mode == "flip-patch" and is_patch:
            data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
        if mode == "flip-byte" and data:
            index = len(data) // 2
            data = data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
        elif mode == "truncate":
            data = data[: len(data) // 2]
        elif mode == "gzip":
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return data, headers

    def _trickle(self, status: int, headers: dict[str, str], data: bytes) -> None:
        """Honest headers, then the body one byte per interval, until the agent hangs up."""
        self._head(status, headers, len(data))
        try:
            self.wfile.flush()
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                time.sleep(self.owner.trickle_interval)
        except OSError:
            pass  # the agent hung up, as it should

    def _endless(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self._head(status, headers, None)
        try:
            self.wfile.write(data)
            for _ in range(64):  # 64 MiB of junk past the manifest's size, then give up
                self.wfile.write(b"\0" * (1024 * 1024))
        except OSError:
            pass  # the agent hung up, as it should

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self._head(status, headers, len(data))
        self.wfile.write(data)
        self.owner.sent.append((self.path, self._head_bytes, len(data)))

    def _head(self, status: int, headers: dict[str, str], length: int | None) -> None:
        """The status line and headers of a one-answer connection (no length: read to close)."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self._head_bytes = sum(len(line) for line in self._headers_buffer) + 2  # + the blank line
        self.end_headers()
        self.close_connection = True
