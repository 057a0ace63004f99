"""The JSON API under /api/v1 (/healthz and /metrics: server/web/health.py)."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast

from flask import Blueprint, Response, abort, g, jsonify, request

from server.domain import api_tokens, emails, publishing, roots, staged_uploads
from server.domain import releases as release_service
from server.domain.errors import InvalidInputError, StorageUnavailableError
from server.domain.models import ApiToken, Email, StagedUpload, utcnow
from server.domain.trust import parse_iso
from server.domain.vocabulary import DEFAULT_CHANNEL, Scope
from server.storage.base import SHA256_HEX, DigestMismatchError, SizeLimitError, StorageError
from server.web import db_session, services
from server.web.converters import small_int
from server.web.json_body import read_object, text
from server.web.openapi import openapi_document
from server.web.uploads import parse_streamed, receive_body

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


def _refuse(status: int, code: str, message: str, **extra: str) -> NoReturn:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    abort(
        Response(
            json.dumps({"error": {"code": code, "message": message, **extra}}),
            status=status,
            mimetype="application/json",
            headers=headers,
        )
    )


def bearer_token(needed: Scope) -> ApiToken:
    """The live token the request bears, if it holds ``needed``; else abort with 401 or 403."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        _refuse(401, "token_missing", "send Authorization: Bearer <token>")
    session = db_session()
    now = utcnow()
    token = api_tokens.find(session, secret.strip())
    if token is None or token.revoked_at is not None:
        _refuse(401, "token_invalid", "unknown or revoked API token")
    if not token.is_live(now):
        expired = token.expires_at.isoformat() if token.expires_at else ""
        _refuse(401, "token_expired", f"this API token expired at {expired}")
    if needed not in api_tokens.granted(token):
        if token.scopes is None:  # a token from before scopes: named by its role, as it was
            message = f"token role '{token.role}' may not do this"
        else:
            message = f"this token lacks the scope '{needed}'"
        _refuse(403, "forbidden", message, scope=needed.value)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.commit()
    return token


# last_used_at is written at most this often per token (a write per API read would be a lot).
LAST_USED_RESOLUTION = timedelta(minutes=1)

View = TypeVar("View", bound=Callable[..., Any])


def require_scope(scope: Scope | str) -> Callable[[View], View]:
    """The view needs a live bearer token holding ``scope`` (401 without a live token, 403
    naming the scope without it); the token is :func:`current_token` in the view."""
    needed = Scope(scope)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if "api_token" not in g:  # (a POST with an Idempotency-Key was checked already)
                g.api_token = bearer_token(needed)
            return view(*args, **kwargs)

        wrapped.required_scope = needed  # type: ignore[attr-defined]  # read by the OpenAPI test
        return cast(View, wrapped)

    return decorator


def current_token() -> ApiToken:
    token: ApiToken = g.api_token
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


def _expected_digest() -> str | None:
    """The SHA-256 (hex) the client says its upload has: ``Repr-Digest: sha-256=:<base64>:``
    (RFC 9530) or ``?sha256=<hex>``; None when it says nothing. A malformed or contradictory
    claim is refused."""
    claimed: set[str] = set()
    query = request.args.get("sha256")
    if query is not None:
        if not SHA256_HEX.match(query.strip().lower()):
            raise InvalidInputError("sha256", "must be 64 hexadecimal digits")
        claimed.add(query.strip().lower())
    header = request.headers.get("Repr-Digest")
    if header is not None:
        # A structured-field dictionary (RFC 8941): algorithm=:base64:, comma-separated.
        found = None
        for member in header.split(","):
            name, _, value = member.strip().partition("=")
            if name.strip() != "sha-256":
                continue
            value = value.split(";", 1)[0].strip()
            try:
                if not (value.startswith(":") and value.endswith(":")) or len(value) < 2:
                    raise ValueError(value)
                raw = base64.b64decode(value[1:-1], validate=True)
            except (ValueError, binascii.Error):
                raise InvalidInputError(
                    "Repr-Digest", "write sha-256 as sha-256=:<base64 of the 32 bytes>:"
                ) from None
            if len(raw) != 32:
                raise InvalidInputError("Repr-Digest", "a sha-256 digest has 32 bytes")
            found = raw.hex()
        if found is None:
            raise InvalidInputError("Repr-Digest", "give a sha-256 digest (sha-256=:<base64>:)")
        claimed.add(found)
    if len(claimed) > 1:
        raise InvalidInputError("sha256", "the sha256 parameter and Repr-Digest disagree")
    return claimed.pop() if claimed else None


@blueprint.post("/api/v1/admin/uploads")
@require_scope(Scope.RELEASES_PUBLISH)
def upload_artifact() -> tuple[Response, int]:
    """Stage an artifact: the raw body, streamed into the store; a JSON publish then names it."""
    token = current_token()
    svc = services()
    limit = svc.settings.max_upload_bytes
    if request.mimetype != "application/octet-stream":
        _refuse(415, "unsupported_media_type", "send the artifact as application/octet-stream")
    length = request.content_length
    if length is None:
        _refuse(411, "length_required", "send a Content-Length (the artifact's size in bytes)")
    if length > limit:
        _refuse(413, "too_large", f"the artifact is larger than {limit} bytes")
    if length == 0:
        raise InvalidInputError("body", "the artifact is empty")
    filename = staged_uploads.check_filename(request.args.get("filename", ""))
    expected = _expected_digest()
    try:
        blob = receive_body(request, svc.store, length, limit, expected)
    except DigestMismatchError as exc:
        _refuse(
            422,
            "digest_mismatch",
            f"the body's sha256 is {exc.actual}, not {exc.expected}; nothing was kept",
        )
    except SizeLimitError:
        _refuse(413, "too_large", f"the artifact is larger than {limit} bytes")
    except StorageError as exc:
        raise StorageUnavailableError(f"artifact store failed: {exc}") from exc
    upload = staged_uploads.stage(db_session(), token, blob, filename)
    return jsonify(upload_json(upload)), 201


def upload_json(upload: StagedUpload) -> dict[str, object]:
    return {
        "id": upload.public_id,
        "filename": upload.filename,
        "size": upload.size,
        "sha256": upload.sha256,
        "created_at": upload.created_at.isoformat(),
        "expires_at": staged_uploads.expires_at(upload).isoformat(),
    }


# A JSON publish's body is a few fields; a larger one is not a release.
MAX_JSON_PUBLISH_BYTES = 1024 * 1024


def _json_spec(body: dict[str, Any]) -> tuple[publishing.ReleaseSpec, dict[str, object]]:
    """The release a JSON publish asks for, and its ``{platform: upload id}``."""
    artifacts = body.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise InvalidInputError(
            "artifacts", 'give {"<platform>": "<upload id>", ...} (POST /api/v1/admin/uploads)'
        )
    draft = body.get("draft", False)
    if not isinstance(draft, bool):
        raise InvalidInputError("draft", "must be true or false")
    customers = body.get("customers", [])
    if isinstance(customers, str):
        customers = customers.replace(" ", "").split(",")
    if not isinstance(customers, list) or not all(isinstance(c, str) for c in customers):
        raise InvalidInputError("customers", "must be a list of customer slugs")
    spec = publishing.ReleaseSpec(
        product=text(body, "product"),
        version=text(body, "version"),
        kind=text(body, "kind"),
        severity=text(body, "severity") or None,
        channel=text(body, "channel") or DEFAULT_CHANNEL,
        notes=text(body, "notes", longest=None),
        min_from=text(body, "min_from") or None,
        line=text(body, "line") or None,
        published_at=_form_time(text(body, "published_at")),
        draft=draft,
        customers=tuple(c.strip() for c in customers if c.strip()),
        platforms=tuple(str(p) for p in artifacts),
    )
    return spec, artifacts


def _publish_json() -> tuple[Response, int]:
    token = current_token()
    svc = services()
    if (request.content_length or 0) > MAX_JSON_PUBLISH_BYTES:
        _refuse(413, "too_large", f"a JSON publish is at most {MAX_JSON_PUBLISH_BYTES} bytes")
    spec, uploads = _json_spec(read_object())
    signer = None if spec.draft else svc.signer("release")
    token.last_used_at = utcnow()
    release = publishing.publish_uploads(
        db_session(),
        svc.store,
        signer,
        spec,
        uploads,
        token_id=token.id,
        actor=f"token:{token.name}",
        max_size=svc.settings.max_upload_bytes,
    )
    return jsonify(release_service.release_json(release)), 201


@blueprint.post("/api/v1/admin/releases")
@require_scope(Scope.RELEASES_PUBLISH)
def publish_release() -> tuple[Response, int]:
    """Publish a release from CI: a JSON body naming staged uploads, or a multipart form with
    one ``artifact.<platform>`` file per platform."""
    if request.mimetype == "application/json":
        return _publish_json()
    token = current_token()
    svc = services()
    if request.mimetype != "multipart/form-data":
        abort(
            415,
            "send application/json naming staged uploads, or multipart/form-data with "
            "artifact.<platform> file fields",
        )
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
@require_scope(Scope.RELEASES_READ)
def list_releases(product: str) -> Response:
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
@require_scope(Scope.NOTIFICATIONS_READ)
def list_emails() -> Response:
    """The newest e-mails (``?customer=slug``, ``?state=sent``, ``?limit=1..500``)."""
    limit = small_int(request.args.get("limit", "100"), 500)
    if not limit:
        raise InvalidInputError("limit", "must be a whole number from 1 to 500")
    found = emails.list_emails(
        db_session(),
        customer=request.args.get("customer", "").strip(),
        state=request.args.get("state", "").strip(),
        limit=limit,
    )
    return jsonify([email_json(e) for e in found])


@blueprint.post("/api/v1/admin/emails/test")
@require_scope(Scope.NOTIFICATIONS_WRITE)
def send_test_email() -> tuple[Response, int]:
    """Queue a test e-mail to ``{"to": address}``; the worker sends it."""
    token = current_token()
    to = text(read_object(), "to", required=True)
    email = emails.send_test(
        db_session(), services().mail_settings(), to, actor=f"token:{token.name}"
    )
    return jsonify(email_json(email)), 202
