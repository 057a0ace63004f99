"""The JSON API under /api/v1 (/healthz and /metrics: server/web/health.py)."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, Response, abort, jsonify, request

from server.domain import api_tokens, emails, publishing, roots
from server.domain import releases as release_service
from server.domain.errors import InvalidInputError, StorageUnavailableError
from server.domain.models import ApiToken, Email, utcnow
from server.domain.trust import parse_iso
from server.domain.vocabulary import DEFAULT_CHANNEL, Role
from server.storage.base import SizeLimitError, StorageError
from server.web import db_session, services
from server.web.openapi import openapi_document
from server.web.uploads import parse_streamed

blueprint = Blueprint("api", __name__)


@blueprint.get("/api/v1/root.json")
def root_newest() -> Response:
    return _root(None)


@blueprint.get("/api/v1/root/<id:version>.json")
def root_version(version: int) -> Response:
    return _root(version)


MAX_ROOT_VERSION = 2**31 - 1  # the database column's range; anything above cannot exist


def _root(version: int | None) -> Response:
    if version is not None and not 1 <= version <= MAX_ROOT_VERSION:
        abort(404, f"no root version {version}")
    document = roots.root_document(db_session(), version)
    if document is None:
        abort(404, f"no root version {version}" if version else "no root of trust yet")
    response = jsonify(document)
    response.headers["Cache-Control"] = "no-cache" if version is None else "public, max-age=86400"
    return response


@blueprint.get("/api/v1/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(services().settings.public_base_url))


def _bearer_token(least: Role) -> ApiToken:
    """The live token the request bears, if its role may do what ``least`` may; else abort."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        abort(
            Response(
                json.dumps(
                    {
                        "error": {
                            "code": "token_missing",
                            "message": "send Authorization: Bearer <token>",
                        }
                    }
                ),
                status=401,
                mimetype="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        )
    token = api_tokens.authenticate(db_session(), secret.strip())
    if token is None:
        abort(
            Response(
                json.dumps(
                    {"error": {"code": "token_invalid", "message": "unknown or revoked API token"}}
                ),
                status=401,
                mimetype="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        )
    if not Role(token.role).allows(least):
        abort(
            Response(
                json.dumps(
                    {
                        "error": {
                            "code": "forbidden",
                            "message": f"token role '{token.role}' may not do this",
                        }
                    }
                ),
                status=403,
                mimetype="application/json",
            )
        )
    return token


def _form_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _form_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value)
    except Exception:  # noqa: BLE001 - any parse failure is the same bad input
        raise InvalidInputError(
            "published_at", f"{value!r} is not an ISO-8601 time with a zone"
        ) from None


@blueprint.post("/api/v1/admin/releases")
def publish_release() -> tuple[Response, int]:
    """Publish a release from CI: multipart form, one ``artifact.<platform>`` file per platform."""
    token = _bearer_token(Role.PUBLISHER)
    svc = services()
    if request.mimetype != "multipart/form-data":
        abort(415, "send multipart/form-data with artifact.<platform> file fields")
    request.max_content_length = svc.settings.max_upload_bytes * 4 + 1024 * 1024
    try:
        upload = parse_streamed(request, svc.store, svc.settings.max_upload_bytes)
    except SizeLimitError:
        abort(413, f"an artifact is larger than {svc.settings.max_upload_bytes} bytes")
    except StorageError as exc:
        raise StorageUnavailableError(f"artifact store failed: {exc}") from exc
    incoming = []
    try:
        for field_name, storage in upload.files.items(multi=True):
            platform = field_name.removeprefix("artifact.")
            if platform == field_name:
                raise InvalidInputError(field_name, "file fields must be named artifact.<platform>")
            incoming.append(
                publishing.StreamedArtifact(
                    platform=platform,
                    filename=storage.filename or "",
                    writer=upload.writer_for(storage),
                )
            )
        form = upload.form
        spec = publishing.ReleaseSpec(
            product=form.get("product", ""),
            version=form.get("version", ""),
            kind=form.get("kind", ""),
            severity=form.get("severity") or None,
            channel=form.get("channel") or DEFAULT_CHANNEL,
            notes=form.get("notes", ""),
            min_from=form.get("min_from") or None,
            line=form.get("line") or None,
            published_at=_form_time(form.get("published_at")),
            draft=_form_bool(form.get("draft")),
            customers=tuple(c for c in form.get("customers", "").replace(" ", "").split(",") if c),
            platforms=tuple(item.platform for item in incoming),
        )
        signer = None if spec.draft else svc.signer("release")
    except BaseException:
        upload.abort()
        raise
    token.last_used_at = utcnow()
    release = publishing.publish(
        db_session(),
        svc.store,
        signer,
        spec,
        incoming,
        actor=f"token:{token.name}",
        max_size=svc.settings.max_upload_bytes,
    )
    return jsonify(release_service.release_json(release)), 201


@blueprint.get("/api/v1/admin/releases/<product>")
def list_releases(product: str) -> Response:
    _bearer_token(Role.VIEWER)
    return jsonify(
        [
            release_service.release_json(r)
            for r in release_service.list_releases(db_session(), product)
        ]
    )


def email_json(email: Email) -> dict[str, object]:
    """One e-mail of the outbox as the admin API shows it (no body: the subject says what)."""
    return {
        "id": email.id,
        "customer": email.customer.slug if email.customer else None,
        "recipient": email.recipient,
        "kind": email.kind,
        "language": email.language,
        "subject": email.subject,
        "state": email.state,
        "attempts": email.attempts,
        "smtp_response": email.smtp_response,
        "created_at": email.created_at.isoformat(),
        "sent_at": email.sent_at.isoformat() if email.sent_at else None,
    }


@blueprint.get("/api/v1/admin/emails")
def list_emails() -> Response:
    """The newest e-mails (``?customer=slug``, ``?state=sent``, ``?limit=1..500``)."""
    _bearer_token(Role.VIEWER)
    raw_limit = request.args.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
        raise InvalidInputError("limit", "must be a whole number from 1 to 500")
    found = emails.list_emails(
        db_session(),
        customer=request.args.get("customer", "").strip(),
        state=request.args.get("state", "").strip(),
        limit=int(raw_limit),
    )
    return jsonify([email_json(e) for e in found])


@blueprint.post("/api/v1/admin/emails/test")
def send_test_email() -> tuple[Response, int]:
    """Queue a test e-mail to ``{"to": address}``; the worker sends it."""
    token = _bearer_token(Role.ADMIN)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        raise InvalidInputError("to", 'send a JSON object {"to": "address@example.com"}')
    email = emails.send_test(
        db_session(), services().mail_settings(), body["to"], actor=f"token:{token.name}"
    )
    return jsonify(email_json(email)), 202
