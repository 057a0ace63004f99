"""Reading the CSV files people export from spreadsheets and other systems.

What arrives in practice: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes
one), ``,`` or ``;`` between fields (``;`` wherever the decimal separator is a comma), quoted
fields holding separators or line breaks, header names in any case, and dates written the
European way (``31/12/2026``, ``31.12.2026``, ``31 dic 2026``, ``31 de diciembre de 2026``)
as well as ISO-8601. Every row keeps the line it starts on, so that a problem names it.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from babel.dates import get_month_names

from server.domain.errors import InvalidInputError
from server.domain.messages import LANGUAGES

DELIMITERS = (",", ";", "\t")
MAX_FIELD = 64 * 1024  # a field longer than this is not a spreadsheet cell: a broken quote


@dataclass(frozen=True)
class Problem:
    """What is wrong with one line of a file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class CsvRow:
    """One record of a CSV file: the line it starts on and its fields by (normalised) column."""

    line: int
    fields: dict[str, str]

    def get(self, column: str) -> str:
        """The field's text, stripped ("" when the column is absent or the cell empty)."""
        return self.fields.get(column, "").strip()


@dataclass(frozen=True)
class CsvTable:
    columns: tuple[str, ...]
    rows: list[CsvRow]


def column_name(header: str) -> str:
    """``" Contract From"`` → ``"contract_from"``: header cells compared as the docs spell them."""
    return re.sub(r"\s+", "_", header.strip().lower())


def decode(data: bytes) -> str:
    """The file's text: UTF-8, a leading byte-order mark dropped.

    Raises:
        InvalidInputError: the bytes are not UTF-8 (the message names the line).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInputError(
            "file",
            f"line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the file as CSV UTF-8",
        ) from None


def _delimiter(header_line: str, known: Iterable[str]) -> str:
    """The separator that splits the header into the most known column names (ties: the one
    that splits it into most cells)."""
    wanted = set(known)

    def score(sep: str) -> tuple[int, int]:
        cells = next(csv.reader([header_line], delimiter=sep), [])
        return sum(column_name(c) in wanted for c in cells), len(cells)

    return max(DELIMITERS, key=score)


def read_table(data: bytes, known_columns: Iterable[str]) -> CsvTable:
    """Parse a CSV file whose first line names its columns.

    Raises:
        InvalidInputError: not UTF-8, empty, a header naming an unknown or repeated column, or a
            quote left open (each names the line).
    """
    known = tuple(known_columns)
    text = decode(data)
    if not text.strip():
        raise InvalidInputError("file", "the file is empty")
    first_line = text.splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line, known))
    csv.field_size_limit(MAX_FIELD)
    try:
        header = [column_name(c) for c in next(reader)]
        unknown = [c for c in header if c and c not in known]
        if unknown:
            raise InvalidInputError(
                "file",
                f"line 1: unknown column {unknown[0]!r}; the columns are: {', '.join(known)}",
            )
        repeated = sorted({c for c in header if c and header.count(c) > 1})
        if repeated:
            raise InvalidInputError("file", f"line 1: column {repeated[0]!r} appears twice")
        rows = []
        start = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(cells) > len(header):
                    raise InvalidInputError(
                        "file",
                        f"line {start}: {len(cells)} fields but the header names {len(header)}",
                    )
                rows.append(CsvRow(start, {c: v for c, v in zip(header, cells, strict=False) if c}))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInputError("file", f"line {reader.line_num}: {exc}") from None
    return CsvTable(tuple(c for c in header if c), rows)


def write_table(columns: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A CSV text (``,``-separated, quoted where needed) with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


# --------------------------------------------------------------------------- dates

_ISO_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_NUMERIC = re.compile(r"\A(\d{1,2})[./-](\d{1,2})[./-](\d{4})\Z")
_NAMED = re.compile(
    r"\A(\d{1,2})(?:\s+de\s+|[\s./-]+)([^\W\d_]+)\.?(?:\s+de\s+|[\s./-]+)(\d{4})\Z", re.IGNORECASE
)


@functools.cache
def month_names() -> dict[str, int]:
    """Month names and abbreviations in every language Vigor speaks (from CLDR), lowercase
    without a final dot, each wide name's first three letters too (``sep``, ``dic``)."""
    names: dict[str, int] = {}
    for language in LANGUAGES:
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for number, name in get_month_names(width, context, language).items():
                    names[name.lower().rstrip(".")] = number
                    if width == "wide":
                        names[name.lower()[:3]] = number
    return names


def parse_day(text: str, field: str) -> date:
    """A calendar day written ``2026-12-31``, ``31/12/2026`` (day first), ``31.12.2026``,
    ``31-12-2026``, ``31 dic 2026``, ``31 Dec 2026`` or ``31 de diciembre de 2026``.

    Raises:
        InvalidInputError: none of those, or no such day.
    """
    value = text.strip()
    try:
        if _ISO_DATE.match(value):
            return date.fromisoformat(value)
        numeric = _NUMERIC.match(value)
        if numeric:
            day, month, year = (int(g) for g in numeric.groups())
            return date(year, month, day)
        named = _NAMED.match(value)
        if named and named.group(2).lower() in month_names():
            return date(int(named.group(3)), month_names()[named.group(2).lower()], int(named[1]))
    except ValueError:
        raise InvalidInputError(field, f"{value[:40]!r} is not a day of the calendar") from None
    raise InvalidInputError(
        field, f"{value[:40]!r} is not a date (write 2026-12-31, 31/12/2026 or 31 dic 2026)"
    )


def parse_moment(text: str, field: str) -> datetime:
    """A day (as :func:`parse_day`, meaning its start in UTC) or an ISO-8601 time (UTC unless
    it says otherwise)."""
    value = text.strip()
    if "T" in value or ":" in value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(field, f"{value[:40]!r} is not an ISO-8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = parse_day(value, field)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
