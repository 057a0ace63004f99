"""The network seam: every transport failure becomes a ``DownloadError``.

HTTP through the standard library's urllib, with proxies from the environment (``HTTPS_PROXY``,
``HTTP_PROXY``, ``NO_PROXY``) or the configuration. Redirects to another origin never carry
``Authorization``; downloads resume with ``Range`` + ``If-Range``, never read a byte past the
manifest's size, refuse any ``Content-Encoding``, and hash while they stream so that the caller
can verify without reading the file again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
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
        if new is not None and _origin(newurl) != _origin(req.full_url):
            for store in (new.headers, new.unredirected_hdrs):
                for name in [n for n in store if n.lower() in _CREDENTIALS]:
                    del store[name]
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


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


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"{error['message']} ({error['code']})"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or "no explanation"


def _request(url: str, **kwargs: Any) -> urllib.request.Request:
    """A request for an http(s) URL only: a server must not steer the agent to ``file:``."""
    if urlsplit(url).scheme not in {"http", "https"}:
        # Untrusted data, not a transient failure: refused at once, never retried.
        raise VerificationError(f"refusing a non-HTTP URL: {url[:80]!r}")
    return urllib.request.Request(url, **kwargs)  # noqa: S310 - scheme checked above


def _http_error(url: str, exc: urllib.error.HTTPError, what: str) -> Exception:
    """The agent's error for an HTTP error status (the caller raises it)."""
    message = _error_message(exc.read(4096))
    if exc.code == 429:
        wait = retry_after_seconds(exc.headers.get("Retry-After"))
        return RateLimitedError(f"the server is busy: {message}", wait)
    if exc.code == 410:
        return DownloadExpiredError(f"the download link expired: {message}")
    if exc.code in (401, 403):
        return ServerRefusedError(f"the server refused this license: {message}")
    host = urlsplit(url).netloc
    return DownloadError(
        f"{what} failed: {host} answered HTTP {exc.code}: {message}",
        status=exc.code,
        retryable=exc.code >= 500,
    )


class UrllibFetcher:
    """The real network, through urllib (proxies from the environment or the config)."""

    def __init__(
        self,
        timeout: float = 30.0,
        proxy: str | None = None,
        attempts: int = 5,
        total_seconds: float = 3600.0,
        first_backoff: float = 0.5,
    ) -> None:
        handlers: list[urllib.request.BaseHandler] = [_SafeRedirect()]
        if proxy:
            # Replaces the proxies from the environment; NO_PROXY is still honoured by urllib.
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)
        self.timeout = timeout
        self.attempts = attempts
        self.total_seconds = total_seconds
        self.first_backoff = first_backoff

    # ------------------------------------------------------------------ JSON

    def _open(self, request: urllib.request.Request, what: str) -> http.client.HTTPResponse:
        try:
            response: http.client.HTTPResponse = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise _http_error(request.full_url, exc, what) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            host = urlsplit(request.full_url).netloc
            raise DownloadError(f"{what} failed: cannot reach {host}: {reason}") from None
        return response

    def _json_body(self, response: http.client.HTTPResponse, max_bytes: int, what: str) -> Any:
        try:
            data = response.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{what} failed: the answer broke off: {exc}") from None
        if len(data) > max_bytes:
            raise VerificationError(f"{what}: the server sent more than {max_bytes} bytes")
        try:
            return json.loads(data)
        except ValueError:
            raise DownloadError(f"{what} failed: the server's answer is not JSON") from None

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        """A JSON document, or None for a 404."""
        what = f"GET {urlsplit(url).path}"
        request = _request(url, headers={"Accept": "application/json"})
        try:
            response = self._open(request, what)
        except DownloadError as exc:
            if exc.status == 404:
                return None
            raise
        with response:
            return JsonReply(response.status, self._json_body(response, max_bytes, what))

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
        with self._open(request, what) as response:
            return JsonReply(response.status, self._json_body(response, max_bytes, what))

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
        deadline = time.monotonic() + self.total_seconds
        delay = self.first_backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._download_once(url, part, size, etag, progress, deadline, headers)
            except DownloadError as exc:
                if not exc.retryable:
                    raise
                if attempt == self.attempts or time.monotonic() + delay > deadline:
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
        try:
            response = self._open(_request(url, headers=headers), "the download")
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
                raise DownloadError(f"the download answered HTTP {response.status}")
            _check_announced_length(response, have, size)
            # Unbuffered: what was received is on disk even if the process is killed.
            with part.open("ab" if have else "wb", buffering=0) as out:
                written = _stream(response, out, digest, have, size, progress, deadline)
                out.flush()
                os.fsync(out.fileno())
        if written < size:
            raise DownloadError(f"the download ended early ({written} of {size} bytes)")
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


def _stream(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    digest: Any,
    have: int,
    size: int,
    progress: Progress | None,
    deadline: float,
) -> int:
    """Copy the body to ``out`` and into ``digest``; one byte past ``size`` is a refusal."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    written = have
    while True:
        # Ask for one byte more than we still need: an endless body shows itself at once.
        want = min(CHUNK, size - written + 1)
        try:
            count = response.readinto(view[:want])
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"the download broke off after {written} bytes: {exc}") from None
        if not count:
            return written
        if written + count > size:
            raise ArtifactError(f"the server sent more than the manifest's {size} bytes; refusing")
        out.write(view[:count])
        digest.update(view[:count])
        written += count
        if progress is not None:
            progress(written)
        crash_point("downloading")
        if time.monotonic() > deadline:
            raise DownloadError(
                f"the download took longer than allowed ({written} of {size} bytes)",
                retryable=False,
            )
