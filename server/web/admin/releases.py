"""Releases: the list, one release with its installs and downloads, publishing a draft, yank
and staged rollout."""

from __future__ import annotations

import json

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import publishing
from server.domain import releases as release_service
from server.domain.dashboard import release_activity
from server.domain.errors import DomainError
from server.domain.patches import patch_lines
from server.domain.vocabulary import Role
from server.web import db_session, services
from server.web.admin import consequences
from server.web.admin.blueprint import blueprint
from server.web.auth import requires
from server.web.confirm import confirmation_page, confirmed
from server.web.converters import small_int


@blueprint.get("/releases/<product>/<version>")
@requires(Role.VIEWER)
def release(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    activity = release_activity(session, found)
    manifest = (
        json.dumps(json.loads(found.manifest), indent=2, sort_keys=True) if found.manifest else None
    )
    return render_template(
        "admin/release.html",
        release=found,
        reports=activity.reports,
        downloads=activity.downloads,
        failure_rate=activity.failure_rate,
        manifest=manifest,
        consequences=consequences,
        patches=patch_lines(session, found),
    )


@blueprint.post("/releases/<product>/<version>/publish")
@requires(Role.PUBLISHER)
def publish_draft(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    publishing.publish_draft(session, found, services().signer("release"), current_user.email)
    flash(f"{product} {version} published.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)


@blueprint.post("/releases/<product>/<version>/yank")
@requires(Role.PUBLISHER)
def yank(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    if not confirmed():
        return confirmation_page(
            title=f"Yank {product} {found.version}?",
            consequence=consequences.yank(found),
            button=f"Yank {product} {found.version}",
            back=url_for("admin.release", product=product, version=found.version),
            keep={k: request.form.get(k, "") for k in ("reason", "recommended")},
        )
    try:
        release_service.yank(
            session,
            found,
            reason=request.form.get("reason", ""),
            recommended_version=request.form.get("recommended") or None,
            actor=current_user.email,
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{product} {version} yanked.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)


@blueprint.post("/releases/<product>/<version>/rollout")
@requires(Role.PUBLISHER)
def rollout(product: str, version: str) -> ResponseReturnValue:
    session = db_session()
    found = release_service.find_release(session, product, version)
    percent = small_int(request.form.get("percent"))
    if percent == 0 and found.rollout_percent != 0 and not confirmed():
        return confirmation_page(
            title=f"Halt the rollout of {product} {found.version}?",
            consequence=consequences.halt(found),
            button="Halt the rollout",
            back=url_for("admin.release", product=product, version=found.version),
            keep={"percent": "0"},
        )
    try:
        release_service.set_rollout(
            session, found, -1 if percent is None else percent, actor=current_user.email
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Rollout of {product} {version} set to {found.rollout_percent}%.")
    return redirect(url_for("admin.release", product=product, version=found.version), code=303)
