"""Cursor pagination for lists that grow while they are read (the admin API's): keyset on the
row id, so a page never repeats or skips a row because rows were added before it.

A cursor is opaque to clients: the last id of the page it follows, in base64url (the order is
part of what the caller asked, not of the cursor).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.domain.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None  # the cursor of the page after this one, None on the last


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor follows, None for the first page.

    Raises:
        InvalidInputError: not a cursor this server gave.
    """
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, _, number = text.partition(":")
        last_id = int(number)
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInputError("cursor", "is not a cursor from a previous page") from None
    if version != "v1" or not 0 <= last_id <= _MAX_ID or len(cursor) > 40:
        raise InvalidInputError("cursor", "is not a cursor from a previous page")
    return last_id


def check_limit(limit: int | None) -> int:
    """The page size asked for, capped at MAX_LIMIT.

    Raises:
        InvalidInputError: below 1.
    """
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise InvalidInputError("limit", f"must be between 1 and {MAX_LIMIT}")
    return min(limit, MAX_LIMIT)


def keyset(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int | None,
    newest_first: bool = False,
    keep: Callable[[Sequence[Any]], list[Any]] | None = None,
) -> Page[Any]:
    """One page of ``query``'s rows in id order (descending when ``newest_first``).

    ``keep`` filters each batch in Python (for what SQL cannot say, such as a computed
    maintenance status); batches are read until the page is full or the rows run out.
    """
    size = check_limit(limit)
    after = decode_cursor(cursor)
    order = id_column.desc() if newest_first else id_column.asc()
    items: list[Any] = []
    while True:
        batch_query = query.order_by(order).limit(size + 1 if keep is None else MAX_LIMIT)
        if after is not None:
            batch_query = batch_query.where(
                id_column < after if newest_first else id_column > after
            )
        batch = list(session.scalars(batch_query))
        if keep is None:
            page = batch[:size]
            more = len(batch) > size
            return Page(page, encode_cursor(page[-1].id) if more and page else None)
        for row in keep(batch):
            items.append(row)
            if len(items) == size:
                last = row.id
                rest = [r for r in batch if (r.id < last if newest_first else r.id > last)]
                more = bool(rest) or len(batch) == MAX_LIMIT
                return Page(items, encode_cursor(last) if more else None)
        if len(batch) < MAX_LIMIT:
            return Page(items, None)
        after = batch[-1].id
