"""Values the console writes into queries are LEQL strings that read back as exactly the value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubsight.query import ast
from hubsight.query.parser import leql_string, parse


def _compared(query: str) -> ast.Compare:
    where = parse(query).where
    assert isinstance(where, ast.Compare), where  # one comparison: the value changed nothing
    return where


@given(st.text())
@settings(deadline=None)  # the first parse builds the grammar
def test_any_value_reads_back_unchanged(value: str) -> None:
    compared = _compared(f"where(user={leql_string(value)}) groupby(application)")
    assert isinstance(compared.value, ast.Text)
    assert (compared.key.name, compared.value.text) == ("user", value)


def test_a_quote_cannot_end_the_string_early() -> None:
    name = 'x") OR user=* OR (user="'
    assert leql_string(name) == r'"x\") OR user=* OR (user=\""'
    assert leql_string("é\\n") == '"é\\\\n"'  # not JSON: no \u escapes, a backslash doubled
