"""What every admin list page shares: the page, order and filters read from the query string
(a bad value is ignored, never a 500), links that keep the other filters, and the CSV export of
the same filtered list, streamed.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a
tab or carriage return can hide one), so such a cell is exported with a ``'`` before it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from flask import Response, request, stream_with_context, url_for
from werkzeug.datastructures import MultiDict

from server.domain.paging import Window
from server.web.admin.blueprint import blueprint
from server.web.converters import small_int

E = TypeVar("E", bound=StrEnum)
R = TypeVar("R")

FILTER_LENGTH = 200  # longer filter values are cut: nothing searched for is longer
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FLUSH_AT = 64 * 1024  # characters of CSV gathered before they are sent


def window() -> Window:
    """The page and order the query string asks for (page 1 for anything but a number)."""
    return Window(page=small_int(request.args.get("page")) or 1, sort=arg("sort"))


def arg(name: str) -> str:
    """A text filter from the query string: trimmed, cut to :data:`FILTER_LENGTH`."""
    return request.args.get(name, "").strip()[:FILTER_LENGTH]


def choice(enum: type[E], name: str) -> E | None:
    """A closed-set filter from the query string; None (no filter) for anything else."""
    try:
        return enum(request.args.get(name, ""))
    except ValueError:
        return None


def day(name: str) -> date | None:
    """A ``YYYY-MM-DD`` filter from the query string; None when empty.

    Raises:
        ValueError: it is not a date (the view says so beside the field).
    """
    text = arg(name)
    return date.fromisoformat(text) if text else None


@blueprint.app_template_global()
def list_url(**changes: Any) -> str:
    """This page's URL with ``changes`` to its query string (page links, sort links); a
    change of filter or order goes back to page 1 unless a page is given."""
    args = MultiDict(request.args)
    if "page" not in changes:
        args.pop("page", None)
    for name, value in changes.items():
        args.pop(name, None)
        if value not in (None, ""):
            args[name] = value
    return _url(args, export=False)


@blueprint.app_template_global()
def export_url() -> str:
    """The CSV export of this page's list, with its filters and order."""
    args = MultiDict(request.args)
    args.pop("page", None)
    return _url(args, export=True)


def _url(args: MultiDict[str, Any], *, export: bool) -> str:
    """The URL of this view with ``args`` as its query string; names of the view's own
    arguments and Flask's ``_external``/``_scheme``… are dropped from ``args``."""
    view_args = {**(request.view_args or {}), "export": export}
    query = {k: v for k, v in args.items() if not k.startswith("_") and k not in view_args}
    return url_for(request.endpoint or "admin.dashboard", **query, **view_args)


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column of an export: its header and how a row gives its value."""

    header: str
    value: Callable[[R], object]


def cell(value: object) -> str:
    """A value as a CSV cell: dates in ISO form, None empty, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, columns: Sequence[Column[R]], rows: Iterable[R]) -> Response:
    """The rows as a CSV download, written while they are read (a header row first)."""

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([column.header for column in columns])
        for row in rows:
            writer.writerow([cell(column.value(row)) for column in columns])
            if buffer.tell() >= FLUSH_AT:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    if request.method == "HEAD":
        # No body, so no stream holding the request (and its database session) open until
        # someone closes a response that has nothing to send.
        return Response(
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
