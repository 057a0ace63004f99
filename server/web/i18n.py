"""The reader's language on the web, and the gettext callables that views and templates use.

A portal page answers in the language the reader chose with the portal's language switcher (a
cookie, :data:`LANGUAGE_COOKIE`), else the customer's language setting, else the browser's
``Accept-Language``, else English (:func:`server.domain.messages.negotiate`). A view that knows
the customer fixes the language of its request with :func:`use_language`; :func:`gettext` and
:func:`ngettext` translate into it from the catalogues of :mod:`server.domain.messages`, the same
ones the check answers use. Templates call them as ``_()``, ``gettext()`` and ``ngettext()``
(installed by Jinja's i18n extension).

The callables are not Jinja's "newstyle" ones: those fill values in with ``%``, while our
sentences have ``{named}`` placeholders, one syntax for the domain and the portal. They return
plain text, so that autoescaping escapes the whole sentence, values included.
"""

from __future__ import annotations

from flask import Flask, g, request

from server.domain import messages
from server.domain.models import Customer

LANGUAGE_COOKIE = "vigor_lang"
"""The language a reader chose in the portal (one of :data:`messages.LANGUAGES`); it outlives
sign-in and sign-out, which start fresh sessions."""


def chosen_language() -> str | None:
    """The language this browser chose with the switcher, when it is one we ship."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in messages.LANGUAGES else None


def use_language(customer: Customer | None = None) -> str:
    """Fix and return the language of this request: the reader's own choice, else
    ``customer``'s setting when we ship it, else the browser's preference, else English."""
    language = chosen_language() or messages.negotiate(
        customer.language if customer else None, request.accept_languages
    )
    g.language = language
    return language


def current_language() -> str:
    """The language :func:`use_language` fixed, else the browser's preference, else English."""
    language = g.get("language")
    return language if isinstance(language, str) else use_language()


def gettext(message: str, /, **values: object) -> str:
    """``message`` (the English sentence) in the request's language, ``values`` filled in."""
    return messages.gettext(message, **values).in_language(current_language())


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """``n`` things in the request's language, in the plural form its CLDR rules give ``n``."""
    return messages.ngettext(singular, plural, n, **values).in_language(current_language())


def init_app(app: Flask) -> None:
    """Install the callables in every template, and the languages a customer may be set to."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=False
    )
    app.jinja_env.globals["customer_languages"] = [
        (language, messages.display_name(language)) for language in messages.LANGUAGES
    ]
