"""Unsubscribing from renewal reminders: the signed link every reminder carries, no sign-in.

``GET`` shows what the link does, with one button; ``POST`` (the button, or a mail client's
one-click unsubscribe, RFC 8058: ``List-Unsubscribe-Post``) does it. A link checker or a mail
scanner that opens the link does not unsubscribe anyone. Security notices are not affected.
"""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from server.domain import emails
from server.domain.errors import DomainError
from server.domain.models import utcnow
from server.web import db_session, services
from server.web.auth import csrf
from server.web.i18n import use_language
from server.web.portal.blueprint import blueprint
from server.web.ratelimit import Per, link_token, rate_limited


def _limit() -> str:
    return services().settings.rate_limit_login


@blueprint.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # the signed token is the capability; mail clients post without a form
@rate_limited(Per(_limit), Per(_limit, link_token))
def unsubscribe(token: str) -> ResponseReturnValue:
    session = db_session()
    secret = services().settings.secret_key
    try:
        if request.method == "POST":
            customer = emails.unsubscribe(session, secret, token, utcnow())
        else:
            customer = emails.read_unsubscribe(session, secret, token)
    except DomainError:
        use_language()
        return render_template("portal/unsubscribe.html", customer=None, done=False), 404
    use_language(customer)
    done = customer.reminders_unsubscribed_at is not None
    return render_template("portal/unsubscribe.html", customer=customer, done=done)
