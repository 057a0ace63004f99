"""What installations call: update checks, downloads, and apply reports."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request, send_file
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.db.licenses import LicenseReads
from server.domain import checks, messages, reports
from server.domain import entitlements as ent
from server.domain.download_links import DownloadGrant, make_token, read_token
from server.domain.errors import (
    InvalidInputError,
    NotEntitledError,
    NotFoundError,
)
from server.domain.facts import license_facts, release_facts
from server.domain.licensing import authenticate_license, check_product, register_installation
from server.domain.models import Artifact, DownloadEvent, License, Patch, Release, utcnow
from server.domain.trust import signed_document_bytes
from server.storage.base import StorageError
from server.web import db_session, services
from server.web.ratelimit import rate_limited, remote_address

blueprint = Blueprint("updates", __name__)


def _license_key() -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme == "License" and key.strip() else None


def _license_bucket() -> str:
    """Rate-limit key per license (a digest: raw keys never sit in limiter storage)."""
    key = _license_key()
    return "license:" + hashlib.sha256(key.encode()).hexdigest()[:32] if key else "license:none"


def _check_limit() -> str:
    return services().settings.rate_limit_check


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidInputError("body", "send a JSON object with Content-Type: application/json")
    return body


@blueprint.post("/api/v1/check")
@rate_limited(_check_limit, _license_bucket, remote_address)
def check() -> Response:
    """Answer an update check with a signed document (docs/protocol.md).

    A known installation polling within the hour costs one read and no transaction: the
    license, its contracts and the installation come back in one query on a connection without
    BEGIN/COMMIT; the session (a transaction) is opened only to record a new or changed
    installation, or a catalogue that is not cached yet.
    """
    svc = services()
    settings = svc.settings
    key = _license_key()
    with svc.db.reading() as conn:
        try:
            req = checks.parse_check_request(_json_body())
        except InvalidInputError:
            authenticate_license(LicenseReads(conn), key)  # a bad key is refused before a bad body
            raise
        lic = authenticate_license(LicenseReads(conn), key, installation_uid=req.installation_id)
    check_product(lic, req.product)
    now = utcnow()
    recorded = register_installation(
        db_session,
        lic,
        req.installation_id,
        version=req.version_text,
        platform=req.platform,
        channel=req.channel,
        now=now,
        touch_interval=timedelta(seconds=settings.installation_touch_interval),
    )
    catalog = svc.catalogs.get(
        db_session, lic.product_id, lic.catalog_revision, settings.renewal_url
    )

    def download_url(artifact_id: int, patch_id: int | None) -> tuple[str, datetime]:
        token = make_token(settings.secret_key, DownloadGrant(lic.id, artifact_id, patch_id))
        # What url_for builds (the script root included), 5 µs sooner.
        url = settings.public_base_url + request.script_root + DOWNLOADS + token
        return url, now + timedelta(seconds=settings.download_url_ttl)

    signed = checks.answer(
        lic.facts(),
        catalog,
        req,
        now,
        ttl=timedelta(seconds=settings.check_response_ttl),
        download_url=download_url,
        language=messages.negotiate(lic.language, request.accept_languages),
    )
    document = signed_document_bytes(signed, [svc.signer("check")])
    if recorded:
        db_session().commit()
    return Response(document, mimetype="application/json", headers={"Cache-Control": "no-store"})


DOWNLOADS = "/api/v1/download/"  # tokens are URL-safe: appended as they are


@blueprint.get(DOWNLOADS + "<token>")
def download(token: str) -> Response:
    """Serve an artifact to the license a check handed the link to, if still entitled."""
    settings = services().settings
    session = db_session()
    grant = read_token(settings.secret_key, token, settings.download_url_ttl)
    lic = session.get(License, grant.license_id, options=[selectinload(License.customer)])
    artifact = session.get(Artifact, grant.artifact_id)
    if lic is None or artifact is None:
        raise NotFoundError("this download no longer exists")
    release = session.scalar(
        select(Release)
        .where(Release.id == artifact.release_id)
        .options(
            selectinload(Release.customers),
            selectinload(Release.line),
            selectinload(Release.artifacts),
        )
    )
    assert release is not None
    now = utcnow()
    if lic.status != "active" or release.is_draft:
        raise NotEntitledError("this license may not download this release", license=lic)
    catalog = services().catalogs.get(
        session, release.product_id, release.product.catalog_revision, settings.renewal_url
    )
    # The whole catalogue goes in: the security carve-out depends on the lines the customer owns.
    decision = ent.decide(
        license_facts(lic),
        catalog.policy,
        release_facts(release),
        now,
        releases=catalog.index.newest_first,
    )
    if not decision.entitled:
        raise NotEntitledError(
            "this license is not entitled to this release: " + "; ".join(decision.reasons),
            license=lic,
        )
    session.add(
        DownloadEvent(
            at=now, license_id=lic.id, artifact_id=artifact.id, range_start=_range_start()
        )
    )
    session.commit()
    digest, filename = artifact.sha256, artifact.filename
    if grant.patch_id is not None:
        patch = session.get(Patch, grant.patch_id)
        if patch is None or patch.artifact_id != artifact.id:
            raise NotFoundError("this patch no longer exists")
        digest, filename = patch.sha256, f"{artifact.filename}.delta"
    store = services().store
    presigned = store.presigned_url(digest, 300, filename=filename)
    if presigned is not None:
        return redirect(presigned, code=302)  # type: ignore[return-value]
    path = store.local_path(digest)
    if path is None or not path.is_file():
        raise NotFoundError("the artifact's bytes are missing from the store")
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=filename,
        conditional=True,
        etag=digest,
        max_age=0,
    )
    response.headers["Accept-Ranges"] = "bytes"
    response.headers.pop("Content-Encoding", None)
    return response


def _range_start() -> int:
    header = request.headers.get("Range", "")
    if header.startswith("bytes="):
        first = header[6:].split("-", 1)[0]
        if first.isdigit():
            return int(first)
    return 0


@blueprint.post("/api/v1/report")
@rate_limited(_check_limit, _license_bucket)
def report() -> tuple[Response, int]:
    """Record an apply outcome; enough failures halt the release's staged rollout."""
    session = db_session()
    lic = authenticate_license(LicenseReads(session), _license_key())
    body = reports.parse_report(_json_body())
    check_product(lic, body.product)
    reports.record_report(session, lic, body, services().settings, now=utcnow())
    return jsonify({"recorded": True}), 202


@blueprint.errorhandler(StorageError)
def _storage_failed(exc: StorageError) -> tuple[Response, int]:
    return jsonify({"error": {"code": "storage_unavailable", "message": str(exc)}}), 503
