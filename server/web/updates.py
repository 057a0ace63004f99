"""What installations call: update checks, downloads, and apply reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Response, jsonify, redirect, request, send_file
from sqlalchemy.orm import Session
from werkzeug.datastructures import LanguageAccept

from server import metrics
from server.config import Settings
from server.db.licenses import LicenseReads
from server.domain import reports
from server.domain.download_links import read_token
from server.domain.downloads import Download, LinkHolder, authorize_download
from server.domain.errors import (
    NotFoundError,
)
from server.domain.models import utcnow
from server.services import Services
from server.storage.base import BlobNotFoundError, content_disposition
from server.web import db_session, instrument, services
from server.web.ratelimit import Per, address_key, digest, rate_limited

blueprint = Blueprint("updates", __name__)


def _license_key() -> str | None:
    return license_key(request.headers.get("Authorization", ""))


def license_key(authorization: str) -> str | None:
    """The key an ``Authorization: License <key>`` header presents (None: no such header)."""
    scheme, _, key = authorization.partition(" ")
    return key.strip() if scheme == "License" and key.strip() else None


def _license_bucket() -> str | None:
    return license_bucket(_license_key())


def license_bucket(key: str | None) -> str | None:
    """Rate-limit key per license (a digest: raw keys never sit in limiter storage); a request
    without a key is counted by its address only."""
    return "license:" + digest(key) if key else None


def _check_limit() -> str:
    return services().settings.rate_limit_check


def _check_address_limit() -> str:
    return services().settings.rate_limit_check_address


# Every installation behind one address (an office's NAT) shares the address's count; each
# license has its own, much tighter one (README.md, "Rate limits").
PER_LICENSE_AND_ADDRESS = (Per(_check_limit, _license_bucket), Per(_check_address_limit))


def check_counted(
    settings: Settings, key: str | None, remote_addr: str | None
) -> list[tuple[str, str]]:
    """:data:`PER_LICENSE_AND_ADDRESS` without a Flask request (for :mod:`fast_check`): the
    (key, limits) a check is counted by, in the same order."""
    bucket = license_bucket(key)
    address = (address_key(remote_addr), settings.rate_limit_check_address)
    return [(bucket, settings.rate_limit_check), address] if bucket else [address]


CHECK_PATH = "/api/v1/check"


@blueprint.post(CHECK_PATH)
@rate_limited(*PER_LICENSE_AND_ADDRESS, batched=True)
def check() -> Response:
    """Answer an update check with a signed document (docs/protocol.md).

    Most checks never reach this view: :mod:`server.web.fast_check` answers them before
    Flask's request machinery, through the same service, limits, headers and metrics; it
    leaves here what it does not handle (a query string, a chunked or oversized body, ...).
    """
    document = respond_to_check(
        services(),
        _license_key(),
        json_or_none(request.get_data()) if request.is_json else None,
        sessions=db_session,
        script_root=request.script_root,
        accept_language=request.accept_languages,
    )
    instrument.answered(document)
    return Response(document, headers=CHECK_HEADERS)


def json_or_none(data: bytes) -> Any:
    """A check's body as JSON; None when it is not JSON at all (not UTF-8, nested deeper than
    1,024 levels included: the standard library's parser raised ``RecursionError`` there, a
    500). orjson: a tenth of the standard library's time."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def respond_to_check(
    svc: Services,
    key: str | None,
    body: Any,
    *,
    sessions: Callable[[], Session],
    script_root: str,
    accept_language: LanguageAccept,
) -> bytes:
    """The signed answer to a check (see ``CheckService.respond``), its download links under
    this app's ``script_root``."""
    return svc.checks.respond(
        LicenseReads(svc.db),
        key,
        body,
        sessions=sessions,
        # What url_for builds (the script root included), 5 µs sooner.
        links_base=svc.settings.public_base_url + script_root + DOWNLOADS,
        accept_language=accept_language,
        now=utcnow(),
    )


# The answer's headers as a list: a dict costs the check 10 µs more (werkzeug reads it as a
# multi-dict); ``mimetype="application/json"`` gives this very Content-Type.
CHECK_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))


DOWNLOADS = "/api/v1/download/"  # tokens are URL-safe: appended as they are


@blueprint.get(DOWNLOADS + "<token>")
def download(token: str) -> Response:
    """Serve an artifact to the license a check handed the link to (its key must come with
    the link), if still entitled."""
    svc = services()
    settings = svc.settings
    served = authorize_download(
        db_session(),
        svc.catalogs,
        read_token(settings.secret_key, token, settings.download_url_ttl),
        holder=LinkHolder(license_key=_license_key()),
        now=utcnow(),
        renewal_url=settings.renewal_url,
        range_start=range_start(),
    )
    return serve_download(served)


def serve_download(served: Download) -> Response:
    """The bytes of an authorized download, as ``VIGOR_DOWNLOADS`` says (docs/storage.md).

    - ``redirect`` (default): a redirect to a presigned storage URL that lives at most
      ``VIGOR_S3_PRESIGN_SECONDS`` (a bearer link, so kept short); a local store's file is
      served here (resumable, with a strong ETag).
    - ``stream``: the bytes go through this process from either store, ``Range`` honoured,
      a chunk at a time.
    - ``accel``: an ``X-Accel-Redirect`` to nginx's internal location, which sends the file or
      fetches the presigned URL itself.
    """
    svc = services()
    mode = svc.settings.downloads
    metrics.DOWNLOADS.inc()
    if mode == "accel":
        return _accel(served)  # nginx moves the bytes: they are not counted here
    presigned = None
    if mode == "redirect":
        presigned = svc.store.presigned_url(
            served.digest, svc.settings.s3_presign_seconds, filename=served.filename
        )
    if presigned is not None:
        return redirect(presigned, code=302)  # type: ignore[return-value]
    path = svc.store.local_path(served.digest)
    if path is None:
        return _stream(served)
    if not path.is_file():
        raise NotFoundError("the artifact's bytes are missing from the store")
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=served.filename,
        conditional=True,
        etag=served.digest,
        max_age=0,
    )
    response.headers["Accept-Ranges"] = "bytes"
    response.headers.pop("Content-Encoding", None)
    metrics.DOWNLOAD_BYTES.inc(
        response.content_length or 0
    )  # a range's length; 0 when not modified
    return response


def _stream(served: Download) -> Response:
    """The blob's bytes from the store through this process (one chunk in memory at a time)."""
    store = services().store
    try:
        size = store.size(served.digest)
    except BlobNotFoundError:
        raise NotFoundError("the artifact's bytes are missing from the store") from None
    headers = {
        "Content-Disposition": content_disposition(served.filename),
        "ETag": f'"{served.digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache",
    }
    wanted = request.range
    if (
        wanted is not None
        and "If-Range" in request.headers
        and request.if_range.etag != served.digest
    ):
        wanted = None  # the client's copy is of other bytes: send the whole blob
    span = wanted.range_for_length(size) if wanted is not None else None
    if wanted is not None and span is None:
        return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, stop = span if span is not None else (0, size)
    if size == 0:
        chunks: Iterator[bytes] = iter(())
    else:
        chunks = store.read_range(served.digest, start, stop - 1)  # raises before the first chunk
    response = Response(
        chunks,
        status=206 if span is not None else 200,
        mimetype="application/octet-stream",
        headers=headers,
        direct_passthrough=True,
    )
    response.content_length = stop - start
    metrics.DOWNLOAD_BYTES.inc(stop - start)
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response


def _accel(served: Download) -> Response:
    """An empty answer whose ``X-Accel-Redirect`` has nginx send the bytes (docs/storage.md)."""
    svc = services()
    location = svc.settings.accel_location
    path = svc.store.local_path(served.digest)
    if path is not None:
        digest = served.digest
        target = f"{location}local/{digest[:2]}/{digest[2:4]}/{digest}"
    else:
        url = svc.store.presigned_url(
            served.digest, svc.settings.s3_presign_seconds, filename=served.filename
        )
        if url is None:  # pragma: no cover - a store is local or presigns
            raise NotFoundError("the artifact's bytes are missing from the store")
        parts = urlsplit(url)
        target = f"{location}s3/{parts.scheme}/{parts.netloc}{parts.path}?{parts.query}"
    return Response(
        status=200,
        mimetype="application/octet-stream",
        headers={
            "X-Accel-Redirect": target,
            "X-Accel-Buffering": "no",
            "Content-Disposition": content_disposition(served.filename),
            "ETag": f'"{served.digest}"',
        },
    )


def range_start() -> int:
    """The first byte a ``Range: bytes=N-`` asks for (0 without one)."""
    header = request.headers.get("Range", "")
    if header.startswith("bytes="):
        first = header[6:].split("-", 1)[0]
        if first.isdigit():
            return int(first)
    return 0


@blueprint.post("/api/v1/report")
@rate_limited(*PER_LICENSE_AND_ADDRESS, batched=True)
def report() -> tuple[Response, int]:
    """Record an apply outcome; enough failures halt the release's staged rollout."""
    session = db_session()
    reports.receive_report(
        LicenseReads(session),
        _license_key(),
        request.get_json(silent=True),
        session,
        services().settings,
        now=utcnow(),
    )
    body = request.get_json(silent=True)  # accepted above: a dict with a known outcome
    metrics.APPLY_REPORTS.labels(str(body["outcome"] if isinstance(body, dict) else "")).inc()
    return jsonify({"recorded": True}), 202
