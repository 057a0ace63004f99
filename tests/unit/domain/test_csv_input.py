"""Reading CSV files as spreadsheets and other systems write them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from server.domain.csv_input import parse_day, parse_moment, read_table
from server.domain.errors import InvalidInputError

COLUMNS = ("customer", "name", "contract_from")


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-31",
        "31/12/2026",
        "31.12.2026",
        "31-12-2026",
        "31 dic 2026",
        "31 dic. 2026",
        "31-Dic-2026",
        "31 de diciembre de 2026",
        "31 Dec 2026",
        "31 December 2026",
    ],
)
def test_a_day_written_the_ways_people_write_it(text: str) -> None:
    assert parse_day(text, "contract_to") == date(2026, 12, 31)


def test_spanish_september_in_its_two_spellings_and_day_first() -> None:
    assert parse_day("1 sept 2026", "d") == parse_day("1 sep 2026", "d") == date(2026, 9, 1)
    assert parse_day("01/02/2026", "d") == date(2026, 2, 1)  # 1 February, never 2 January


@pytest.mark.parametrize(
    "text", ["12/31/2026", "31 foo 2026", "2026-02-30", "tomorrow", "", "31/12/26"]
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_day(text, "contract_to")
    assert refused.value.field == "contract_to"


def test_a_moment_is_a_day_at_midnight_utc_or_an_iso_time() -> None:
    assert parse_moment("15/03/2026", "t") == datetime(2026, 3, 15, tzinfo=UTC)
    assert parse_moment("2026-03-15T10:00:00+02:00", "t") == datetime(2026, 3, 15, 8, tzinfo=UTC)
    assert parse_moment("2026-03-15 10:00", "t") == datetime(2026, 3, 15, 10, tzinfo=UTC)


def test_rows_keep_the_line_they_start_on_whatever_the_separator() -> None:
    text = 'Customer;Name\n\nsol;"Panadería\nSol; S.L."\nacme;Acme\n'
    table = read_table(("\ufeff" + text).encode(), COLUMNS)
    assert table.columns == ("customer", "name")
    assert [(r.line, r.get("customer"), r.get("name")) for r in table.rows] == [
        (3, "sol", "Panadería\nSol; S.L."),
        (5, "acme", "Acme"),
    ]
    comma = read_table(b"customer,name\nsol,Sol\n", COLUMNS)
    assert comma.rows[0].fields == {"customer": "sol", "name": "Sol"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file: the file is empty"),
        (b"customer,nmae\n", "line 1: unknown column 'nmae'"),
        (b"customer,customer\n", "line 1: column 'customer' appears twice"),
        (b"customer,name\na,b,c\n", "line 2: 3 fields but the header names 2"),
        (b"customer\n\xe9\n", "line 2 is not UTF-8 text (byte 0xe9)"),
    ],
)
def test_a_file_that_cannot_be_read_says_where(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        read_table(data, COLUMNS)
    assert message in refused.value.message
