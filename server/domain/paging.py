"""Pages of a list for the admin pages and their CSV exports: a stable order, a page number
clamped to the pages that exist, the total, and every row of the same list for an export.

A list is a ``Select`` plus the orders a reader may pick by name (``"name"`` ascending,
``"-name"`` descending); the row id always breaks ties, so that a row appears on exactly one
page however many rows share a sort value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import ceil
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, SQLColumnExpression, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
U = TypeVar("U")

PAGE_SIZE = 50
EXPORT_BATCH = 500  # rows read at a time while a CSV export streams


@dataclass(frozen=True)
class Window:
    """What a reader asked for: a page (from 1), its size, and an order by name."""

    page: int = 1
    size: int = PAGE_SIZE
    sort: str = ""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with what the page links need."""

    rows: list[T]
    number: int  # from 1; a page asked for past the end is the last page
    size: int
    total: int  # rows in the whole (filtered) list
    sort: str  # the order applied, as the reader names it ("-last_seen")

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.size))

    @property
    def first_row(self) -> int:
        """The 1-based position of the page's first row (0 on an empty list)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return self.first_row + len(self.rows) - 1 if self.rows else 0

    def map(self, convert: Callable[[list[T]], list[U]]) -> Page[U]:
        """The same page with its rows converted (all at once, e.g. with one extra query)."""
        return Page(convert(self.rows), self.number, self.size, self.total, self.sort)


def order(sorts: Mapping[str, SQLColumnExpression[Any]], sort: str) -> tuple[str, list[Any]]:
    """The ORDER BY for ``sort``: a name of ``sorts``, ``-`` first for descending. The first
    key of ``sorts`` is the default order (written ``"-name"`` when it is descending), used
    for an unknown name. Returns the order applied, as the reader names it, and the clause."""
    columns = {name.removeprefix("-"): column for name, column in sorts.items()}
    if sort.removeprefix("-") not in columns:
        sort = next(iter(sorts))
    column = columns[sort.removeprefix("-")]
    return sort, [column.desc() if sort.startswith("-") else column.asc()]


def page_of(
    session: Session,
    query: Select[*tuple[Any, ...]],
    window: Window,
    sorts: Mapping[str, SQLColumnExpression[Any]],
    tiebreak: SQLColumnExpression[Any],
    *,
    scalars: bool = True,
) -> Page[T]:
    """``window``'s page of ``query`` in the order it names (``tiebreak``, a unique column,
    last, in the same direction), with the count of the whole list; rows are the first
    column's values, or tuples of every column when ``scalars`` is false."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    size = max(1, window.size)
    number = min(max(1, window.page), max(1, ceil(total / size)))
    applied, clauses = order(sorts, window.sort)
    last = tiebreak.desc() if applied.startswith("-") else tiebreak.asc()
    ordered = query.order_by(*clauses, last).offset((number - 1) * size).limit(size)
    rows: list[Any] = (
        list(session.scalars(ordered)) if scalars else list(session.execute(ordered).all())
    )
    return Page(rows, number, size, total, applied)


def page_of_list(rows: Sequence[T], window: Window) -> Page[T]:
    """``window``'s page of rows already computed in order (lists decided in Python)."""
    size = max(1, window.size)
    number = min(max(1, window.page), max(1, ceil(len(rows) / size)))
    start = (number - 1) * size
    return Page(list(rows[start : start + size]), number, size, len(rows), window.sort)


def every_row(fetch: Callable[[Window], Page[T]], sort: str = "") -> Iterator[T]:
    """Every row of a list, page after page of :data:`EXPORT_BATCH` in the list's order (what
    a CSV export streams without holding the whole list)."""
    number = 1
    while True:
        page = fetch(Window(number, EXPORT_BATCH, sort))
        yield from page.rows
        if page.number >= page.pages:
            return
        number += 1
