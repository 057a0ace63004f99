"""E-mails: what was sent to whom and whether the SMTP server accepted it, by customer and
state, and a "send test" button that shows whether the SMTP settings work."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from server.domain import customers as customer_service
from server.domain import emails
from server.domain.errors import DomainError
from server.domain.vocabulary import EmailState, Role
from server.web import db_session, services
from server.web.admin.blueprint import blueprint
from server.web.auth import requires


@blueprint.get("/emails")
@requires(Role.VIEWER)
def emails_page() -> ResponseReturnValue:
    return _page()


def _page(error: str | None = None, status: int = 200, to: str = "") -> ResponseReturnValue:
    customer = request.args.get("customer", "").strip()
    state = request.args.get("state", "").strip()
    session = db_session()
    try:
        found = emails.list_emails(session, customer=customer, state=state)
    except DomainError as exc:
        found, error, status = [], exc.message, 404 if customer else 400
    settings = services().settings
    return render_template(
        "admin/emails.html",
        emails=found,
        customer=customer,
        state=state,
        states=list(EmailState),
        customers=customer_service.list_customers(session),
        smtp_configured=bool(settings.smtp_url),
        mail_from=settings.mail_from,
        error=error,
        to=to,
    ), status


@blueprint.post("/emails/test")
@requires(Role.ADMIN)
def send_test_email() -> ResponseReturnValue:
    to = request.form.get("to", "")
    try:
        email = emails.send_test(
            db_session(), services().mail_settings(), to, actor=current_user.email
        )
    except DomainError as exc:
        return _page(error=exc.message, status=400, to=to)
    flash(f"A test e-mail to {email.recipient} is queued; the worker sends it.")
    return redirect(url_for("admin.emails_page"), code=303)
