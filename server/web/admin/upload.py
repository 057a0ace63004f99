"""The upload form: files streamed into the store while the form is parsed, one file per
platform, then published (or saved as a draft) in one step."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from wtforms import ValidationError

from server.domain import products as product_service
from server.domain import publishing, upload_check
from server.domain.errors import DomainError, StorageUnavailableError
from server.domain.releases import MAX_VERSION_LENGTH
from server.domain.vocabulary import DEFAULT_CHANNEL, Role
from server.storage.base import SizeLimitError, StorageError
from server.web import db_session, services
from server.web.admin.blueprint import blueprint
from server.web.auth import csrf, requires
from server.web.converters import small_int
from server.web.errors import RETRY_AFTER_SECONDS
from server.web.readable import size
from server.web.uploads import MAX_FILE_PARTS, parse_streamed


@blueprint.route("/releases/new", methods=["GET", "POST"])
@csrf.exempt  # the token is checked by hand: the form is parsed as a stream, after the files
@requires(Role.PUBLISHER)
def upload() -> ResponseReturnValue:
    products = [p.slug for p in product_service.list_products(db_session())]
    if request.method != "POST":  # GET, and HEAD (answered as GET without the body)
        wanted = request.args.get("files", "1")
        rows = min(small_int(wanted) or 1, MAX_FILE_PARTS)
        return _upload_page(products, {}, {}, ["linux-x86_64"] + [""] * (rows - 1))
    svc = services()
    request.max_content_length = svc.settings.max_upload_bytes * 4 + 1024 * 1024
    try:
        upload = parse_streamed(request, svc.store, svc.settings.max_upload_bytes)
    except (SizeLimitError, RequestEntityTooLarge):
        limit = size(svc.settings.max_upload_bytes)
        message = f"A file is larger than the upload limit: at most {limit} per file."
        return _form_error(products, {}, {"files": message}, 413)
    except StorageError as exc:
        return _storage_error(products, {}, exc)
    except BadRequest as exc:
        return _form_error(products, {}, {"files": f"The upload failed: {exc}"}, 400)
    platforms = _file_platforms(upload.form)
    values = {
        k: upload.form.get(k, "")
        for k in (
            "product",
            "version",
            "kind",
            "severity",
            "channel",
            "notes",
            "min_from",
            "draft",
        )
    }
    values["customers"] = _customers_text(upload.form)
    try:
        validate_csrf(upload.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        upload.abort()
        abort(400, "The form expired or did not come from this site; reload it and try again.")
    incoming = []
    chosen = {name for name, storage in upload.files.items(multi=True) if storage.filename}
    for field_name, storage in upload.files.items(multi=True):
        if field_name in chosen:
            incoming.append(
                publishing.StreamedArtifact(
                    platforms.get(field_name, ""),
                    storage.filename or "",
                    upload.writer_for(storage),
                )
            )
        else:
            upload.writer_for(storage).abort()
    errors = _problems(upload.form, values, {f: (platforms.get(f, ""), None) for f in chosen})
    if errors:  # every field's problem at once, the input kept
        upload.abort()
        return _form_error(products, values, errors, 400, list(platforms.values()))
    problem = _file_rows_problem(platforms, chosen)
    if problem:
        upload.abort()
        return _form_error(products, values, {"platform": problem}, 400, list(platforms.values()))
    spec = publishing.ReleaseSpec(
        product=values["product"],
        version=values["version"].strip(),
        kind=values["kind"],
        severity=values["severity"] or None,
        channel=values["channel"].strip() or DEFAULT_CHANNEL,
        notes=values["notes"],
        min_from=values["min_from"].strip() or None,
        customers=tuple(c.strip() for c in values["customers"].split(",") if c.strip()),
        draft=bool(values["draft"]),
        platforms=tuple(i.platform for i in incoming),
    )
    try:
        signer = None if spec.draft else svc.signer("release")
    except DomainError as exc:
        upload.abort()  # nothing was handed to publish(), which would discard the files itself
        return _form_error(products, values, {"form": exc.message}, 400, list(platforms.values()))
    try:
        published = publishing.publish(
            db_session(),
            svc.store,
            signer,
            spec,
            incoming,
            actor=current_user.email,
            max_size=svc.settings.max_upload_bytes,
        )
    except StorageUnavailableError as exc:
        return _storage_error(products, values, exc, list(platforms.values()))
    except DomainError as exc:
        field = str(exc.context.get("field") or "form")
        return _form_error(products, values, {field: exc.message}, 400, list(platforms.values()))
    flash(
        f"{published.product.slug} {published.version} {'saved as a draft' if spec.draft else 'published'}."
    )
    target = url_for("admin.release", product=published.product.slug, version=published.version)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        # The page's script sent the form to show progress: it navigates there itself, so the
        # browser makes a real page load (and the flash message is still waiting for it).
        return jsonify(location=target)
    return redirect(target, code=303)


@blueprint.post("/releases/new/check")
@requires(Role.PUBLISHER)
def upload_preflight() -> ResponseReturnValue:
    """The form's details checked before any file byte is sent (the page's script asks):
    ``{"errors": {field: message}}``, 422 when there is any. The file fields are not sent;
    ``chosen`` names each chosen file field and ``size.<field>`` its size in bytes."""
    form = request.form
    platforms = _file_platforms(form)
    files = {
        name: (platforms.get(name, ""), _byte_count(form.get(f"size.{name}", "")))
        for name in form.getlist("chosen")
    }
    values = {k: form.get(k, "") for k in ("product", "version", "kind", "severity", "channel")}
    values |= {"min_from": form.get("min_from", ""), "customers": _customers_text(form)}
    errors = _problems(form, values, files)
    return jsonify(errors=errors), 422 if errors else 200


def _byte_count(text: str) -> int | None:
    """A file size the script sent (None when absent or not a plain count of bytes)."""
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _customers_text(form: MultiDict[str, str]) -> str:
    """The customized-build customers: picked in a list, or typed as slugs with commas."""
    slugs = [s.strip() for value in form.getlist("customers") for s in value.split(",")]
    return ", ".join(s for s in slugs if s)


def _problems(
    form: MultiDict[str, str], values: dict[str, str], files: dict[str, tuple[str, int | None]]
) -> dict[str, str]:
    limit = services().settings.max_upload_bytes
    return upload_check.problems(
        db_session(),
        product=values["product"],
        version=values["version"],
        kind=values["kind"],
        severity=values["severity"],
        channel=values["channel"].strip() or DEFAULT_CHANNEL,
        min_from=values["min_from"],
        customers=[c.strip() for c in values["customers"].split(",") if c.strip()],
        files=files,
        max_size=limit,
        limit_text=size(limit),
    )


def _file_platforms(form: MultiDict[str, str]) -> dict[str, str]:
    """Each file row's platform, by its file field (``platform.artifact-2`` → ``artifact-2``)."""
    return {
        key.removeprefix("platform."): value.strip()
        for key, value in form.items()
        if key.startswith("platform.")
    }


def _file_rows_problem(platforms: dict[str, str], chosen: set[str]) -> str | None:
    """Why the file rows cannot be published as they are, if they cannot."""
    for field_name in chosen:
        if not platforms.get(field_name):
            return "Give the platform of every file (os-arch, e.g. linux-x86_64, or any)."
    for field_name, platform in platforms.items():
        if platform and field_name not in chosen:
            return f"No file was chosen for {platform}."
    return None


def _upload_page(
    products: list[str], values: dict[str, str], errors: dict[str, str], platforms: list[str]
) -> str:
    """The upload form; one file row per entry of ``platforms`` (their values kept)."""
    rows = [
        {
            "field": "artifact" if n == 1 else f"artifact-{n}",
            "field_id": "artifact" if n == 1 else f"artifact-{n}",
            "platform_id": "platform" if n == 1 else f"platform-{n}",
            "platform": platform,
        }
        for n, platform in enumerate(platforms or ["linux-x86_64"], start=1)
    ]
    limit = services().settings.max_upload_bytes
    return render_template(
        "admin/upload.html",
        products=products,
        values=values,
        errors=errors,
        file_rows=rows,
        choices=upload_check.choices(db_session(), DEFAULT_CHANNEL),
        chosen_customers={c.strip() for c in values.get("customers", "").split(",")},
        limit=size(limit),
        max_version_length=MAX_VERSION_LENGTH,
    )


def _storage_error(
    products: list[str],
    values: dict[str, str],
    exc: Exception,
    platforms: list[str] | None = None,
) -> ResponseReturnValue:
    """The form again, saying the store failed and nothing was published (503, Retry-After)."""
    message = (
        "The artifact store is unavailable, so nothing was published; try again in a minute. "
        f"({exc})"
    )
    page = _upload_page(products, values, {"files": message}, platforms or [])
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _form_error(
    products: list[str],
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
    platforms: list[str] | None = None,
) -> ResponseReturnValue:
    return _upload_page(products, values, errors, platforms or []), status
