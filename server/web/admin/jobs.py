"""Background jobs: queue depth, the worker's last sign of life, failures and their Retry."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import jobs
from server.domain.vocabulary import JobState, Role
from server.web import db_session
from server.web.admin.blueprint import blueprint
from server.web.auth import requires


@blueprint.get("/jobs")
@requires(Role.VIEWER)
def jobs_page() -> ResponseReturnValue:
    return render_template(
        "admin/jobs.html",
        overview=jobs.overview(db_session(), jobs.now_precise()),
        states=list(JobState),
    )


@blueprint.post("/jobs/<id:job_id>/retry")
@requires(Role.PUBLISHER)
def retry_job(job_id: int) -> ResponseReturnValue:
    session = db_session()
    job = jobs.retry(session, job_id, actor=current_user.email)
    session.commit()
    flash(f"Job {job.id} ({job.kind}) is queued again.")
    return redirect(url_for("admin.jobs_page"), code=303)
