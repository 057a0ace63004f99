"""A request's JSON body, read one way by every endpoint that takes one (the admin API's,
docs/admin-api.md, and the JSON release publish): a JSON object, with typed text fields, and no
NUL character anywhere in it, nested values and keys included (PostgreSQL refuses NUL in text:
a 500 there instead of a 400, and a value SQLite would keep)."""

from __future__ import annotations

from typing import Any

from flask import abort, request

from server.domain.errors import InvalidInputError

# A text field longer than this is refused unless the endpoint says otherwise (release notes).
MAX_TEXT = 10_000


def read_object() -> dict[str, Any]:
    """The request's JSON object; no body at all reads as an empty object (a body that is not
    ``application/json`` is answered with 415).

    Raises:
        InvalidInputError: the body is not a JSON object or is nested too deeply (field
            ``body``), or a string in it holds NUL (the top-level field it is in; ``body`` for
            a key).
    """
    if request.mimetype != "application/json":
        if request.content_length or request.form or request.files:
            abort(415, "send application/json")
        return {}
    if not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser recurses (silent covers ValueError)
        raise InvalidInputError("body", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInputError("body", "must be a JSON object")
    for name, value in data.items():
        if _holds_nul(name):
            raise InvalidInputError("body", "must not contain NUL characters")
        if _holds_nul(value):
            raise InvalidInputError(name, "must not contain NUL characters")
    return data


def _holds_nul(value: object) -> bool:
    """Some string in ``value``, however deeply nested (a key too), holds NUL. A loop, not
    recursion: a deeply nested body must not exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
    return False


def text(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    default: str = "",
    longest: int | None = MAX_TEXT,
) -> str:
    """The string field ``name`` of ``body``; ``default`` when absent or null.

    Raises:
        InvalidInputError: it is not a string, is longer than ``longest`` characters, or is
            ``required`` and absent, null or blank.
    """
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInputError(name, "is required")
        return default
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be a string")
    if required and not value.strip():
        raise InvalidInputError(name, "is required")
    if longest is not None and len(value) > longest:
        raise InvalidInputError(name, "is too long")
    return value


def optional_text(body: dict[str, Any], name: str) -> str | None:
    """The string field ``name``, or None when absent or null."""
    return text(body, name) if body.get(name) is not None else None
