"""Numbers, dates and codes as people read them, in the reader's language: template filters.

``size`` (200 MiB), ``day`` (a date), ``moment`` (a date and time, UTC), ``ago`` (how long ago,
"3 days ago") and ``outcome`` (an install report's code in words). Dates and relative times come
from Babel's CLDR data in the request's language (:func:`server.web.i18n.current_language`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal
from flask import Flask

from server.domain.models import utcnow
from server.web.i18n import current_language
from server.web.i18n import gettext as _

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def size(n: int | None) -> str:
    """``209715200`` → ``200 MiB``: at most one decimal, binary units (as the limits are set)."""
    if n is None:
        return "—"
    value = float(n)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    digits = "#,##0" if unit == 0 or value >= 100 or value == int(value) else "#,##0.#"
    return f"{format_decimal(value, format=digits, locale=current_language())} {_UNITS[unit]}"


def day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return format_date(value, format="medium", locale=current_language())


def moment(value: datetime | None) -> str:
    """A date and time in UTC (stored naive, in UTC), e.g. ``30 Nov 2026, 14:05 UTC``."""
    if value is None:
        return "—"
    stamp = format_datetime(_utc(value), format="medium", tzinfo=UTC, locale=current_language())
    return f"{stamp.rsplit(':', 1)[0]} UTC"


def _utc(value: datetime) -> datetime:
    """Stored times are UTC, naive on SQLite and aware on PostgreSQL."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ago(value: datetime | None) -> str:
    """How long ago (or from now) ``value`` is: ``3 days ago``, ``in 2 weeks``."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    delta = _utc(value) - _utc(utcnow())
    return format_timedelta(delta, add_direction=True, threshold=1.1, locale=current_language())


def outcome(code: str) -> str:
    """An install report's outcome in words."""
    words = {
        "success": _("installed"),
        "failure": _("failed"),
        "rolled_back": _("failed and rolled back"),
    }
    return words.get(code, code.replace("_", " "))


def action_words(action: str) -> str:
    """An audit action code (``license.revoke``) as words (``license revoke``)."""
    return action.replace(".", " ").replace("_", " ")


def audit_details(details: dict[str, object] | None) -> str:
    """An audit event's details as a short sentence: empty values left out, lists joined,
    names in words (``severity: critical · platforms: linux-x86_64, any``)."""
    parts = []
    for key, value in (details or {}).items():
        if value is None or value == "" or value == [] or value == ():
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return " · ".join(parts)


def init_app(app: Flask) -> None:
    for function in (size, day, moment, ago, outcome, action_words, audit_details):
        app.add_template_filter(function, function.__name__)


def field_error(message: str, labels: dict[str, str]) -> str:
    """A domain refusal (``ends_on: must not be before starts_on``) with each field named as
    the form labels it (``To: must not be before From``)."""
    field, colon, rest = message.partition(": ")
    if colon and field in labels:
        message = f"{labels[field]}: {rest}"
    # Other field names in the sentence: only identifiers (``starts_on``), not plain words.
    for name, label in labels.items():
        if "_" in name:
            message = re.sub(rf"\b{re.escape(name)}\b", label, message)
    return message
