"""What installations call: update checks, downloads, and apply reports."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, send_file

from server import metrics
from server.db.licenses import LicenseReads
from server.domain import reports
from server.domain.download_links import read_token
from server.domain.downloads import Download, LinkHolder, authorize_download
from server.domain.errors import (
    NotFoundError,
)
from server.domain.models import utcnow
from server.storage.base import StorageError
from server.web import db_session, instrument, services
from server.web.ratelimit import Per, digest, rate_limited

blueprint = Blueprint("updates", __name__)


def _license_key() -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme == "License" and key.strip() else None


def _license_bucket() -> str | None:
    """Rate-limit key per license (a digest: raw keys never sit in limiter storage); a request
    without a key is counted by its address only."""
    key = _license_key()
    return "license:" + digest(key) if key else None


def _check_limit() -> str:
    return services().settings.rate_limit_check


def _check_address_limit() -> str:
    return services().settings.rate_limit_check_address


# Every installation behind one address (an office's NAT) shares the address's count; each
# license has its own, much tighter one (README.md, "Rate limits").
PER_LICENSE_AND_ADDRESS = (Per(_check_limit, _license_bucket), Per(_check_address_limit))


@blueprint.post("/api/v1/check")
@rate_limited(*PER_LICENSE_AND_ADDRESS, batched=True)
def check() -> Response:
    """Answer an update check with a signed document (docs/protocol.md)."""
    svc = services()
    document = svc.checks.respond(
        LicenseReads(svc.db),
        _license_key(),
        request.get_json(silent=True),
        sessions=db_session,
        # What url_for builds (the script root included), 5 µs sooner.
        links_base=svc.settings.public_base_url + request.script_root + DOWNLOADS,
        accept_language=request.accept_languages,
        now=utcnow(),
    )
    instrument.answered(document)
    return Response(document, mimetype="application/json", headers={"Cache-Control": "no-store"})


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
    """The bytes of an authorized download: from the local store (resumable, with a strong
    ETag), or a redirect to a presigned storage URL that lives at most
    ``VIGOR_S3_PRESIGN_SECONDS`` (a bearer link, so kept short)."""
    svc = services()
    presigned = svc.store.presigned_url(
        served.digest, svc.settings.s3_presign_seconds, filename=served.filename
    )
    metrics.DOWNLOADS.inc()
    if presigned is not None:
        return redirect(presigned, code=302)  # type: ignore[return-value]
    path = svc.store.local_path(served.digest)
    if path is None or not path.is_file():
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


@blueprint.errorhandler(StorageError)
def _storage_failed(exc: StorageError) -> tuple[Response, int]:
    return jsonify({"error": {"code": "storage_unavailable", "message": str(exc)}}), 503
