"""The customer portal: sign in (:mod:`.signin`), see maintenance, download, renew (:mod:`.pages`),
unsubscribe from renewal reminders (:mod:`.unsubscribe`).

Two ways in: a license key, or a portal user's email and password (people at the customer,
invited by an admin; see :mod:`server.domain.portal_users`). A key sign-in shows that license;
a portal user sees their customer's active licenses (picking one when there are several) and
then the same page for it, under ``/portal/licenses/<id>/``.

The portal session holds only what is checked again on every page: the token of a key session
recorded server-side, or the portal user's id and session version; never a key or a password.
Signing out ends it server-side, so a copied cookie dies with it. Text
comes from the gettext catalogues (:mod:`server.web.i18n`), in the customer's language setting,
else the browser's.
"""

from __future__ import annotations

from flask import Flask

from server.web.portal import account, pages, signin, unsubscribe
from server.web.portal.blueprint import blueprint

__all__ = ["account", "blueprint", "init_app", "pages", "signin", "unsubscribe"]


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint, url_prefix="/portal")
