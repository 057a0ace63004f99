"""The style guide: every shared component of ``_ui.html`` as a page shows it, for whoever
writes the next page (and for the browser tests, which hold it to the same accessibility and
phone-width checks as the real pages)."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template
from flask.typing import ResponseReturnValue

from server.domain.models import utcnow
from server.domain.vocabulary import Role
from server.web.admin.blueprint import blueprint
from server.web.auth import requires


@blueprint.get("/style")
@requires(Role.VIEWER)
def style_guide() -> ResponseReturnValue:
    now = utcnow()
    return render_template(
        "admin/style.html",
        example_moment=now - timedelta(days=3, hours=2),
        example_date=(now - timedelta(days=40)).date(),
    )
