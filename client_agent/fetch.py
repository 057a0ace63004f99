"""The network seam: every transport failure becomes a ``DownloadError``.

HTTP through the standard library's urllib, with proxies from the environment (``HTTPS_PROXY``,
``HTTP_PROXY``, ``NO_PROXY``) or the configuration. Redirects to another origin never carry
``Authorization``; downloads resume with ``Range`` + ``If-Range``, never read a byte past the
manifest's size, refuse any ``Content-Encoding``, and hash while they stream so that the caller
can verify without reading the file again.

Every exchange has a wall-clock deadline (:class:`_Deadline`) that holds even while a peer sends
one byte a second: bodies are read in small reads, each with a socket timeout of the idle
timeout or the time left, whichever is shorter, and a watchdog shuts the socket at the deadline
(which also ends a trickled status line, header or proxy ``CONNECT`` answer). A download must
also keep a minimum rate over every stall window; a download whose last byte arrives in time is
accepted, whatever the clock says when it is checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from client_agent.errors import (
    ArtifactError,
    DownloadError,
    DownloadExpiredError,
    RateLimitedError,
    ServerRefusedError,
    VerificationError,
)
from client_agent.files import CHUNK, crash_point, hash_file

__all__ = [
    "Fetcher",
    "JsonReply",
    "Progress",
    "UrllibFetcher",
    "retry_after_seconds",
    "same_origin",
]

Progress = Callable[[int], None]

# Headers that prove who we are: never sent to an origin other than the one they were meant for.
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class JsonReply:
    """A JSON answer: its HTTP status and parsed body."""

    status: int
    body: Any


class Fetcher(Protocol):
    """What the agent needs from the network. Implementations raise ``DownloadError`` (or a
    child) for every transport failure, ``ServerRefusedError`` when the server refuses the
    license, and nothing else from the transport."""

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        """A JSON document of at most ``max_bytes``, or None when the server answers 404."""
        ...

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        """POST ``body`` as JSON; the JSON answer of at most ``max_bytes``."""
        ...

    def download(
        self,
        url: str,
        part: Path,
        size: int,
        etag: str,
        progress: Progress | None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Bring ``part`` to at most ``size`` bytes, resuming what it holds; return the hex
        SHA-256 of the whole file. Never reads more than ``size`` bytes from the server.
        ``headers`` go to the URL's own origin only, never across a redirect to another."""
        ...


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow http(s) redirects, but never carry credentials to another origin.

    urllib's own handler copies every header to the new request, ``Authorization`` included,
    whatever host the redirect names: a download redirected to a storage host would hand it the
    license key.
    """

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any
    ) -> Any:
        # Checked before urllib's own handling, which would follow ftp: and report others as
        # an HTTP error: a redirect off HTTP is a refusal, said so.
        location = headers.get("Location") or ""
        if urlsplit(location).scheme not in {"http", "https", ""}:
            fp.close()
            raise VerificationError(f"refusing a redirect to a non-HTTP URL: {location[:80]!r}")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        """The request for the redirect target, without credentials if it is another origin."""
        if urlsplit(newurl).scheme not in {"http", "https"}:
            raise VerificationError(f"refusing a redirect to a non-HTTP URL: {newurl[:80]!r}")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            _set_deadline(new, _deadline_of(req))  # one deadline for the whole exchange
        if new is not None and _origin(newurl) != _origin(req.full_url):
            for store in (new.headers, new.unredirected_hdrs):
                for name in [n for n in store if n.lower() in _CREDENTIALS]:
                    del store[name]
        return new


class _Deadline:
    """One exchange's wall-clock limit, kept on its socket even while bytes trickle in.

    ``idle`` bounds each silent wait; ``at`` (``time.monotonic``) bounds the whole. Each read is
    preceded by :meth:`arm`, which sets the socket's timeout to the shorter of the two; a
    watchdog shuts the socket down at ``at`` for what the agent does not read itself (the
    status line and headers, a proxy's answer to ``CONNECT``, a TLS handshake).
    """

    def __init__(self, seconds: float, idle: float, url: str, shown: float | None = None) -> None:
        self.seconds = seconds if shown is None else shown  # what messages name
        self.at = time.monotonic() + seconds
        self.idle = idle
        self.host = urlsplit(url).netloc  # the host answering now (redirects change it)
        self.connected = False
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._watchdog = threading.Timer(max(seconds, 0.0), self._cut)
        self._watchdog.daemon = True
        self._watchdog.start()

    def left(self) -> float:
        """Seconds until the deadline (negative once past it)."""
        return self.at - time.monotonic()

    def timeout(self) -> float:
        """The timeout for the next blocking call; ``TimeoutError`` once the deadline passed."""
        left = self.left()
        if left <= 0 or self.expired:
            self.expired = True
            raise TimeoutError("deadline")
        return min(self.idle, left)

    def attach(self, sock: socket.socket) -> None:
        """Watch ``sock`` (the connection's socket, again once TLS wraps it)."""
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()
        sock.settimeout(self.timeout())

    def arm(self) -> None:
        """Before a read: the socket times out at the idle limit or the deadline."""
        timeout = self.timeout()
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.settimeout(timeout)

    def _cut(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """The exchange is over: stop the watchdog."""
        self._watchdog.cancel()


_DEADLINE = "_vigor_deadline"


def _deadline_of(request: urllib.request.Request) -> _Deadline | None:
    deadline = getattr(request, _DEADLINE, None)
    return deadline if isinstance(deadline, _Deadline) else None


def _set_deadline(request: urllib.request.Request, deadline: _Deadline | None) -> None:
    setattr(request, _DEADLINE, deadline)


class _Watched(http.client.HTTPConnection):
    """A connection whose sockets its exchange's deadline watches, from the first SYN on."""

    def __init__(self, *args: Any, deadline: _Deadline | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        create = self._create_connection  # type: ignore[has-type]

        def create_watched(*cargs: Any, **ckwargs: Any) -> socket.socket:
            sock: socket.socket = create(*cargs, **ckwargs)
            if deadline is not None:
                deadline.attach(sock)
            return sock

        self._create_connection = create_watched

    def connect(self) -> None:
        if self._deadline is not None:
            self.timeout = self._deadline.timeout()
        super().connect()
        if self._deadline is not None and self.sock is not None:
            self._deadline.attach(self.sock)  # TLS made a new socket object of the same one
            self._deadline.connected = True


class _WatchedHTTPS(_Watched, http.client.HTTPSConnection):
    """The TLS connection, watched the same way."""


def _factory(kind: type[_Watched], request: urllib.request.Request) -> Any:
    deadline = _deadline_of(request)
    if deadline is not None:
        deadline.host = urlsplit(request.full_url).netloc
        deadline.connected = False

    def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        return kind(host, deadline=deadline, **kwargs)

    return connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(_Watched, req), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(_WatchedHTTPS, req), req)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:  # not a number: an origin of its own, matching nothing configured
        return parts.scheme, parts.netloc.lower(), -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (``https://h`` is ``https://h:443``)."""
    return _origin(url) == _origin(other)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _error_message(body: bytes) -> str | None:
    """The server's own JSON explanation (``message (code)``); None for anything else, such as
    a proxy's or a load balancer's HTML error page, which is never shown raw."""
    try:
        error = json.loads(body)["error"]
        message, code = error["message"], error["code"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(message, str) or not isinstance(code, str):
        return None
    return f"{' '.join(message.split())[:300]} ({code[:60]})"


def _request(url: str, **kwargs: Any) -> urllib.request.Request:
    """A request for an http(s) URL only: a server must not steer the agent to ``file:``."""
    if urlsplit(url).scheme not in {"http", "https"}:
        # Untrusted data, not a transient failure: refused at once, never retried.
        raise VerificationError(f"refusing a non-HTTP URL: {url[:80]!r}")
    return urllib.request.Request(url, **kwargs)  # noqa: S310 - scheme checked above


def _http_error(host: str, exc: urllib.error.HTTPError, what: str) -> Exception:
    """The agent's error for an HTTP error status from ``host`` (the caller raises it)."""
    try:
        body = exc.read(4096)
    except (OSError, http.client.HTTPException, ValueError):
        body = b""  # the explanation broke off: the status says enough
    explained = _error_message(body)
    said = f"HTTP {exc.code} from {host}" + (f": {explained}" if explained else "")
    if exc.code == 429:
        wait = retry_after_seconds(exc.headers.get("Retry-After"))
        return RateLimitedError(f"the server is busy ({said})", wait)
    if exc.code == 410:
        return DownloadExpiredError(f"the download link expired ({said})")
    if exc.code in (401, 403):
        return ServerRefusedError(f"the server refused this license ({said})")
    return DownloadError(f"{what} failed: {said}", status=exc.code, retryable=exc.code >= 500)


def _timed_out(deadline: _Deadline, what: str) -> DownloadError:
    if deadline.connected:
        return DownloadError(
            f"{what} failed: timed out while reading from {deadline.host}", retryable=True
        )
    return DownloadError(f"{what} failed: cannot connect to {deadline.host}: timed out")


def _broke_off(deadline: _Deadline, what: str, exc: BaseException) -> DownloadError:
    """The error for a read that failed: a timeout (or the watchdog) said as such."""
    if deadline.expired or isinstance(exc, TimeoutError):
        return _timed_out(deadline, what)
    return DownloadError(f"{what} failed: the answer from {deadline.host} broke off: {exc}")


class UrllibFetcher:
    """The real network, through urllib (proxies from the environment or the config).

    Args:
        timeout: seconds a connection attempt or a silent read may take.
        proxy: replaces the proxies from the environment.
        attempts: tries per download, each resuming where the last stopped.
        total_seconds: a download gives up after this long (all tries) ...
        min_rate: ... or after ``size / min_rate`` seconds, when that is longer.
        stall_seconds: a download attempt that receives fewer than ``min_rate × stall_seconds``
            bytes in any window this long has stalled (it is retried, resuming).
        document_seconds: a JSON document (root, check answer, report answer) must arrive
            whole within this, connection included.
        first_backoff: the wait before the second try; it doubles, at most 30 s.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        proxy: str | None = None,
        attempts: int = 5,
        total_seconds: float = 3600.0,
        first_backoff: float = 0.5,
        *,
        min_rate: float = 32768.0,
        stall_seconds: float = 60.0,
        document_seconds: float = 120.0,
    ) -> None:
        handlers: list[urllib.request.BaseHandler] = [
            _SafeRedirect(),
            _HTTPHandler(),
            _HTTPSHandler(),
        ]
        if proxy:
            # Replaces the proxies from the environment; NO_PROXY is still honoured by urllib.
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)
        self.timeout = timeout
        self.attempts = attempts
        self.total_seconds = total_seconds
        self.first_backoff = first_backoff
        self.min_rate = min_rate
        self.stall_seconds = stall_seconds
        self.document_seconds = document_seconds

    def download_seconds(self, size: int) -> float:
        """The whole download's deadline: the fixed one, or longer for a large artifact."""
        return max(self.total_seconds, size / self.min_rate)

    # ------------------------------------------------------------------ JSON

    def _open(
        self, request: urllib.request.Request, what: str, deadline: _Deadline
    ) -> http.client.HTTPResponse:
        _set_deadline(request, deadline)
        try:
            response: http.client.HTTPResponse = self.opener.open(
                request, timeout=deadline.timeout()
            )
        except urllib.error.HTTPError as exc:
            with exc:
                error = _http_error(deadline.host, exc, what)
            if deadline.expired:  # the explanation was trickled: a timeout, not an answer
                raise _timed_out(deadline, what) from None
            raise error from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if deadline.expired or isinstance(reason, TimeoutError):
                raise _timed_out(deadline, what) from None
            if deadline.connected:
                raise DownloadError(
                    f"{what} failed: the answer from {deadline.host} broke off: {reason}"
                ) from None
            raise DownloadError(
                f"{what} failed: cannot connect to {deadline.host}: {reason}"
            ) from None
        return response

    def _json_body(
        self, response: http.client.HTTPResponse, max_bytes: int, what: str, deadline: _Deadline
    ) -> Any:
        data = bytearray()
        while not (data and response.isclosed()):  # closed: the announced length is all in
            try:
                deadline.arm()
                chunk = response.read1(min(65536, max_bytes + 1 - len(data)))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise _broke_off(deadline, what, exc) from None
            if not chunk:
                if deadline.expired:  # the watchdog shut the socket: what came is not all
                    raise _timed_out(deadline, what)
                break
            data += chunk
            if len(data) > max_bytes:
                raise VerificationError(f"{what}: the server sent more than {max_bytes} bytes")
        try:
            return json.loads(data)
        except ValueError:
            raise DownloadError(
                f"{what} failed: the answer from {deadline.host} is not JSON"
            ) from None

    def _exchange(self, request: urllib.request.Request, max_bytes: int, what: str) -> JsonReply:
        deadline = _Deadline(self.document_seconds, self.timeout, request.full_url)
        try:
            with self._open(request, what, deadline) as response:
                return JsonReply(
                    response.status, self._json_body(response, max_bytes, what, deadline)
                )
        finally:
            deadline.close()

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        """A JSON document, or None for a 404."""
        what = f"GET {urlsplit(url).path}"
        request = _request(url, headers={"Accept": "application/json"})
        try:
            return self._exchange(request, max_bytes, what)
        except DownloadError as exc:
            if exc.status == 404:
                return None
            raise

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        """POST JSON; the JSON answer."""
        what = f"POST {urlsplit(url).path}"
        request = _request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        return self._exchange(request, max_bytes, what)

    # ------------------------------------------------------------------ downloads

    def download(
        self,
        url: str,
        part: Path,
        size: int,
        etag: str,
        progress: Progress | None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Download with bounded retries (exponential backoff with jitter) and a deadline."""
        seconds = self.download_seconds(size)
        deadline = time.monotonic() + seconds
        delay = self.first_backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._download_once(url, part, size, etag, progress, deadline, headers)
            except DownloadError as exc:
                if not exc.retryable:
                    raise
                if time.monotonic() + delay > deadline:
                    raise DownloadError(
                        f"{exc} (gave up: the download may take {seconds:.0f} s at most; "
                        f"limits.download_total_seconds)",
                        status=exc.status,
                        retryable=False,
                    ) from None
                if attempt == self.attempts:
                    raise DownloadError(
                        f"{exc} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})",
                        status=exc.status,
                        retryable=False,
                    ) from None
            time.sleep(delay * random.uniform(1.0, 1.25))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _download_once(
        self,
        url: str,
        part: Path,
        size: int,
        etag: str,
        progress: Progress | None,
        deadline: float,
        extra: Mapping[str, str] | None,
    ) -> str:
        have = part.stat().st_size if part.exists() else 0
        if have > size:  # not ours to trust: start again
            part.unlink()
            have = 0
        have, digest = hash_file(part) if have else (0, hashlib.sha256())
        if have == size:
            return digest.hexdigest()
        headers = {**(extra or {}), "Accept-Encoding": "identity"}
        if have:
            # If-Range: should the file have changed on the server, it answers 200 with all of it.
            headers.update({"Range": f"bytes={have}-", "If-Range": f'"{etag}"'})
        watch = _Deadline(
            deadline - time.monotonic(), self.timeout, url, shown=self.download_seconds(size)
        )
        try:
            try:
                response = self._open(_request(url, headers=headers), "the download", watch)
            except DownloadError as exc:
                if exc.status != 416:
                    raise
                # Our partial file is longer than the server's: it is not a prefix. Start over.
                part.unlink(missing_ok=True)
                raise DownloadError(
                    "the server refused to resume; starting again", status=416
                ) from None
            with response:
                _refuse_encoding(response)
                if have and response.status == 200:
                    # The server ignored Range (or the file changed): start again from zero.
                    have, digest = 0, hashlib.sha256()
                elif response.status == 206:
                    _check_content_range(response, have, size)
                elif response.status != 200:
                    raise DownloadError(
                        f"the download failed: HTTP {response.status} from {watch.host}"
                    )
                _check_announced_length(response, have, size)
                # Unbuffered: what was received is on disk even if the process is killed.
                with part.open("ab" if have else "wb", buffering=0) as out:
                    pace = _Pace(self.min_rate, self.stall_seconds, have)
                    written = _stream(response, out, digest, have, size, progress, watch, pace)
                    out.flush()
                    os.fsync(out.fileno())
        finally:
            watch.close()
        if written < size:
            raise DownloadError(
                f"the download from {watch.host} ended early ({written} of {size} bytes)"
            )
        return digest.hexdigest()


def _refuse_encoding(response: http.client.HTTPResponse) -> None:
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        # The manifest's size and hash are of the identity bytes; a decoder in between would
        # also let a small body expand without bound.
        raise ArtifactError(
            f"the server sent the artifact with Content-Encoding {encoding!r}; refusing"
        )


def _check_content_range(response: http.client.HTTPResponse, have: int, size: int) -> None:
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {have}-"):
        raise DownloadError(
            f"the server resumed at the wrong place ({content_range!r}, wanted byte {have})"
        )


def _check_announced_length(response: http.client.HTTPResponse, have: int, size: int) -> None:
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.isdigit() and have + int(announced) > size:
        raise ArtifactError(
            f"the server announces {have + int(announced)} bytes, more than the manifest's "
            f"{size}; refusing"
        )


@dataclass
class _Pace:
    """The stall rule: at least ``min_rate × window`` bytes in every ``window`` seconds."""

    min_rate: float
    window: float
    mark_bytes: int
    mark_time: float = 0.0

    def __post_init__(self) -> None:
        self.mark_time = time.monotonic()

    def check(self, written: int, host: str) -> None:
        now = time.monotonic()
        if now - self.mark_time < self.window:
            return
        if written - self.mark_bytes < self.min_rate * self.window:
            raise DownloadError(
                f"the download from {host} stalled: {written - self.mark_bytes} bytes in the "
                f"last {now - self.mark_time:.0f} s (limits.download_min_rate is "
                f"{self.min_rate:.0f} bytes/s)"
            )
        self.mark_bytes, self.mark_time = written, now


def _stream(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    digest: Any,
    have: int,
    size: int,
    progress: Progress | None,
    deadline: _Deadline,
    pace: _Pace,
) -> int:
    """Copy the body to ``out`` and into ``digest``; one byte past ``size`` is a refusal.

    Each read takes what has arrived (at most ``CHUNK``), so the deadline and the stall rule are
    looked at while bytes trickle. Once all ``size`` bytes are in, the deadline no longer
    matters: the bytes are complete and the caller verifies them.
    """
    written = have
    while True:
        # Ask for one byte more than we still need: an endless body shows itself at once.
        want = min(CHUNK, size - written + 1)
        try:
            deadline.arm()
            chunk = response.read1(want)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if written == size:
                return written  # complete; only the end of the body was late
            raise _stream_failed(deadline, written, size, exc) from None
        if not chunk:
            if deadline.expired and written < size:
                raise _stream_failed(deadline, written, size, TimeoutError())
            return written
        count = len(chunk)
        if written + count > size:
            raise ArtifactError(f"the server sent more than the manifest's {size} bytes; refusing")
        out.write(chunk)
        digest.update(chunk)
        written += count
        if progress is not None:
            progress(written)
        crash_point("downloading")
        if written < size:
            pace.check(written, deadline.host)


def _stream_failed(deadline: _Deadline, written: int, size: int, exc: BaseException) -> Exception:
    if deadline.expired or (isinstance(exc, TimeoutError) and deadline.left() <= 0):
        return DownloadError(
            f"the download from {deadline.host} did not finish within "
            f"{deadline.seconds:.0f} s ({written} of {size} bytes; "
            "limits.download_total_seconds, limits.download_min_rate)",
            retryable=False,
        )
    if isinstance(exc, TimeoutError):
        return DownloadError(
            f"the download failed: timed out while reading from {deadline.host} "
            f"({written} of {size} bytes)"
        )
    return DownloadError(
        f"the download from {deadline.host} broke off after {written} bytes: {exc}"
    )
