"""Path variables that are validated before a view runs.

``<id:…>`` names a database row: digits only, at most the largest value an ``INTEGER`` column
holds on PostgreSQL (and well within SQLite's). Anything else does not match the route, so the
answer is a 404 — never an ``OverflowError`` from the driver (``/licenses/99999…/``) or a
``ValueError`` from converting five thousand digits.
"""

from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, Map

MAX_DATABASE_ID = 2**31 - 1


class DatabaseIdConverter(IntegerConverter):
    """A positive row id that fits the database's ``INTEGER`` columns."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_DATABASE_ID)


def init_app(app: Flask) -> None:
    """Register the converters (before any blueprint, whose rules name them) and the NUL check."""
    app.url_map.converters["id"] = DatabaseIdConverter
    app.before_request(refuse_nul_characters)


def small_int(text: str | None, maximum: int = MAX_DATABASE_ID) -> int | None:
    """``text`` (a query or form value) as a whole number from 0 to ``maximum``, or None when it
    is anything else — ``"²"`` and five thousand digits included, which ``int`` refuses."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def refuse_nul_characters() -> None:
    """Refuse (400) a path, query or urlencoded form with a NUL character: no Vigor value holds
    one, and PostgreSQL refuses text containing it (a driver error, a 500, instead of a "no such
    thing"). Multipart bodies are left to the upload views that stream them."""
    texts = [request.path]
    query = request.environ.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:  # else no decoded name or value holds one: not parsed
        texts += [*request.args.keys(), *request.args.values()]
    if request.mimetype == "application/x-www-form-urlencoded":
        texts += [*request.form.keys(), *request.form.values()]
    if any("\x00" in text for text in texts):
        abort(400, "NUL characters are not allowed in a request")
