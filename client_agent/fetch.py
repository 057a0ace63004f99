"""The network seam: every transport failure becomes a ``DownloadError``.

HTTP through the standard library. Redirects to another host never carry ``Authorization``;
downloads resume with ``Range`` + ``If-Range``, never read more than the manifest's size, and
refuse any ``Content-Encoding``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
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
    ServerRefusedError,
    VerificationError,
)

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class JsonReply:
    status: int
    body: Any
    retry_after: float | None


class Fetcher(Protocol):
    """What the agent needs from the network."""

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        """A JSON document, or None for a 404."""
        ...

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply: ...

    def download(
        self, url: str, part: Path, size: int, etag: str, progress: Callable[[int], None] | None
    ) -> None:
        """Bring ``part`` to exactly ``size`` bytes, resuming what is there."""
        ...


class _SameHostAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry credentials to another host (urllib would)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            for name in ("Authorization", "Cookie", "Proxy-Authorization"):
                new.remove_header(name)
                new.unredirected_hdrs.pop(name, None)
        return new


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"{error['message']} ({error['code']})"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _request(url: str, **kwargs: Any) -> urllib.request.Request:
    """A request for an http(s) URL only: a server must not steer the agent to ``file:`` or worse."""
    if urlsplit(url).scheme not in {"http", "https"}:
        # Untrusted data, not a transient failure: refused at once, never retried.
        raise VerificationError(f"refusing a non-HTTP URL: {url[:80]!r}")
    return urllib.request.Request(url, **kwargs)  # noqa: S310 - scheme checked above


class UrllibFetcher:
    """The real network, through urllib (proxies from the environment or the config)."""

    def __init__(
        self,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        proxy: str | None = None,
        attempts: int = 5,
        total_seconds: float = 3600.0,
    ) -> None:
        handlers: list[urllib.request.BaseHandler] = [_SameHostAuthRedirect()]
        if proxy:
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)  # env proxies + NO_PROXY by default
        self.timeout = max(connect_timeout, read_timeout)
        self.attempts = attempts
        self.total_seconds = total_seconds

    def _open(self, request: urllib.request.Request) -> http.client.HTTPResponse:
        try:
            response: http.client.HTTPResponse = self.opener.open(request, timeout=self.timeout)
            return response
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"cannot reach {urlsplit(request.full_url).netloc}: {reason}"
            ) from None

    @staticmethod
    def _read_limited(response: Any, max_bytes: int) -> bytes:
        data: bytes = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ArtifactError(f"the server sent a document larger than {max_bytes} bytes")
        return data

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        request = _request(url, headers={"Accept": "application/json"})
        try:
            with self._open(request) as response:
                return JsonReply(
                    response.status, self._parse(self._read_limited(response, max_bytes)), None
                )
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise DownloadError(
                f"{url}: HTTP {exc.code} {_error_message(exc.read(4096))}"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: {exc}") from None

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        request = _request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        try:
            with self._open(request) as response:
                return JsonReply(
                    response.status, self._parse(self._read_limited(response, max_bytes)), None
                )
        except urllib.error.HTTPError as exc:
            message = _error_message(exc.read(4096))
            if exc.code == 429:
                return JsonReply(429, None, _retry_after(exc.headers))
            if exc.code in (401, 403):
                raise ServerRefusedError(f"the server refused this license: {message}") from None
            raise DownloadError(f"{url}: HTTP {exc.code} {message}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: {exc}") from None

    @staticmethod
    def _parse(data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise DownloadError("the server's answer is not JSON") from None

    def download(
        self, url: str, part: Path, size: int, etag: str, progress: Callable[[int], None] | None
    ) -> None:
        deadline = time.monotonic() + self.total_seconds
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                self._download_once(url, part, size, etag, progress)
                return
            except (DownloadExpiredError, ArtifactError):
                raise
            except DownloadError:
                if attempt == self.attempts or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _download_once(
        self, url: str, part: Path, size: int, etag: str, progress: Callable[[int], None] | None
    ) -> None:
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have == size:
            return
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers.update({"Range": f"bytes={have}-", "If-Range": f'"{etag}"'})
        request = _request(url, headers=headers)
        try:
            response = self._open(request)
        except urllib.error.HTTPError as exc:
            message = _error_message(exc.read(4096))
            if exc.code == 410:
                raise DownloadExpiredError(f"the download link expired: {message}") from None
            if exc.code == 416:
                part.unlink(missing_ok=True)
                raise DownloadError("the server refused the resume range; starting over") from None
            if exc.code in (401, 403):
                raise ServerRefusedError(f"the server refused the download: {message}") from None
            raise DownloadError(f"download failed: HTTP {exc.code} {message}") from None
        with response:
            encoding = (response.headers.get("Content-Encoding") or "identity").lower()
            if encoding != "identity":
                raise ArtifactError(
                    f"the server sent the artifact with Content-Encoding {encoding!r}; refusing"
                )
            if have and response.status == 200:
                have = 0  # the server ignored Range (or the file changed): start again from zero
            elif response.status == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    raise DownloadError(f"unexpected Content-Range {content_range!r}")
            mode = "ab" if have else "wb"
            with part.open(mode) as out:
                written = have
                while True:
                    try:
                        chunk = response.read(min(CHUNK, size - written + 1))
                    except (OSError, http.client.HTTPException) as exc:
                        raise DownloadError(f"the download broke off: {exc}") from None
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > size:
                        raise ArtifactError(
                            f"the server sent more than the manifest's {size} bytes; refusing"
                        )
                    out.write(chunk)
                    if progress:
                        progress(written)
                out.flush()
                os.fsync(out.fileno())
        if written < size:
            raise DownloadError(f"the download ended early ({written} of {size} bytes)")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def terminal_progress(total: int) -> Callable[[int], None] | None:
    """A one-line progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(done: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != last[0]:
            last[0] = percent
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\r  downloading [{bar:<25}] {percent:3d}% of {total / 1e6:.1f} MB")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show
