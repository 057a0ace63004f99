"""The dashboard and the audit log."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from server.domain import adoption
from server.domain.dashboard import dashboard as dashboard_of
from server.domain.models import utcnow
from server.domain.vocabulary import Role
from server.web import charts, db_session
from server.web.admin.blueprint import blueprint
from server.web.auth import requires


@blueprint.get("/")
@requires(Role.VIEWER)
def dashboard() -> ResponseReturnValue:
    board = dashboard_of(
        db_session(), utcnow(), request.args.get("period", "days"), request.args.get("product")
    )
    return render_template(
        "admin/dashboard.html",
        counts=board.totals,
        versions=board.versions,
        products=board.products,
        product=board.product,
        period=board.period,
        series=board.series,
        adoption=board.adoption,
        chart=charts.downloads_chart(board.series, weekly=board.period == "weeks"),
        target=adoption.TARGET_SHARE,
    )
