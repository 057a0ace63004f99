"""A webhook receiver for tests: a real HTTP server in a thread that verifies every request's
Standard Webhooks signature with the reference library, as a vendor's CRM would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as it arrived, and what verifying its signature said."""

    at: float  # time.time()
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: dict[str, Any] | None

    @property
    def event_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def type(self) -> str:
        return (self.payload or {}).get("type", "")


@dataclass
class WebhookReceiver:
    """Answers each POST with ``status(n)`` (n: the request's number from 0) after ``before``
    returns; records every request. ``secret`` is set once the endpoint has one."""

    secret: str = ""
    status: Callable[[int], int] = lambda n: 204
    before: Callable[[int], None] = lambda n: None
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    number = len(receiver.received)
                    receiver.received.append(receiver._verify(headers, body))
                receiver.before(number)
                status = receiver.status(number)
                reply = b'{"ok": false}' if status >= 400 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _verify(self, headers: dict[str, str], body: bytes) -> Received:
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = json.loads(body), False
        return Received(time.time(), headers, body, verified, payload)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
