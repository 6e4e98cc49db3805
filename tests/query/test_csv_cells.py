"""CSV cells a spreadsheet would run as formulas are defused; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

import hubsight
from hubsight.cli.search_cmd import _render_csv
from hubsight.query.csv_cells import csv_cell, csv_row


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (
            '=HYPERLINK("https://evil.example","x")@contoso.com',
            '\'=HYPERLINK("https://evil.example","x")@contoso.com',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-1.5", "-1.5"),
        ("+42", "+42"),
        ("-3e5", "-3e5"),
        (-7, -7),
        (2.5, 2.5),
        ("alice@contoso.com", "alice@contoso.com"),
        ("a=b", "a=b"),
        ("", ""),
        ({"k": "=x"}, '{"k":"=x"}'),
    ],
)
def test_cells(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


def test_a_row_reads_back_with_the_formula_as_text() -> None:
    line = csv_row(["=1+1", 3, "-4"])
    assert next(csv.reader(io.StringIO(line))) == ["'=1+1", "3", "-4"]


def test_the_cli_csv_defuses_formulas_too() -> None:
    text = _render_csv(["user", "count"], [["=cmd()", 2], ["bob", -1.0]])
    assert text.splitlines() == ["user,count", "'=cmd(),2", "bob,-1"]


def test_every_csv_writer_goes_through_csv_row() -> None:
    package = Path(hubsight.__file__).parent
    writers = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if re.search(r"^import csv$|csv\.writer", p.read_text("utf-8"), re.M)
    ]
    assert writers == ["query/csv_cells.py"]
