"""Import: upload a CSV file of customers, contracts, existing license keys and installations,
read the dry run's report (every bad line named), then confirm (docs/import.md).

The file is not kept on the server between the two steps: the report page carries it back in
its confirmation form, and the confirmed import checks it again from scratch, in one transaction.
"""

from __future__ import annotations

import base64
import binascii

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import customer_import
from server.domain.errors import DomainError
from server.domain.models import utcnow
from server.domain.vocabulary import Role
from server.web import db_session
from server.web.admin.blueprint import blueprint
from server.web.auth import requires

MAX_IMPORT_BYTES = 32 * 1024 * 1024  # a file, or its copy in the confirmation form
SHOWN_PROBLEMS = 500  # problems listed on the page (the count says how many in all)


def _page(
    report: customer_import.ImportReport | None = None,
    *,
    error: str | None = None,
    data: bytes = b"",
    filename: str = "",
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "admin/import.html",
        report=report,
        error=error,
        data=base64.b64encode(data).decode() if data else "",
        filename=filename,
        shown=SHOWN_PROBLEMS,
        columns=customer_import.COLUMNS,
    ), status


@blueprint.get("/import")
@requires(Role.ADMIN)
def import_page() -> ResponseReturnValue:
    return _page()


@blueprint.get("/import/customers-template.csv")
@requires(Role.ADMIN)
def import_template() -> ResponseReturnValue:
    return Response(
        customer_import.template(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="vigor-customers-template.csv"'},
    )


def _run(data: bytes, filename: str, *, dry_run: bool) -> ResponseReturnValue:
    try:
        report = customer_import.import_customers(
            db_session(),
            data,
            actor=current_user.email,
            now=utcnow(),
            dry_run=dry_run,
            source=filename,
        )
    except DomainError as exc:
        return _page(error=exc.message, status=400)
    status = 400 if report.errors else 200
    return _page(report, data=data if dry_run else b"", filename=filename, status=status)


@blueprint.post("/import")
@requires(Role.ADMIN)
def import_check() -> ResponseReturnValue:
    """The dry run of an uploaded file."""
    request.max_content_length = MAX_IMPORT_BYTES
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(error="Choose a CSV file to import.", status=400)
    return _run(upload.read(), upload.filename[:200], dry_run=True)


@blueprint.post("/import/confirm")
@requires(Role.ADMIN)
def import_confirm() -> ResponseReturnValue:
    """The import itself, of the file the dry run's page carried back."""
    request.max_content_length = MAX_IMPORT_BYTES * 2
    try:
        data = base64.b64decode(request.form.get("data", ""), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        return _page(error="The file to import is missing; upload it again.", status=400)
    return _run(data, request.form.get("filename", "")[:200], dry_run=False)
