"""Query errors: the problem, its line and column, a caret excerpt and a useful hint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsight.errors import QuerySyntaxError
from hubsight.query.compiler import Compiled, Scope, compile_query
from hubsight.query.parser import OPERATORS, parse

SCOPE = Scope(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC))


def _error(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query(parse(query), SCOPE, limit=10, strict=True)
    return caught.value


@pytest.mark.parametrize(
    ("query", "column", "message", "hint"),
    [
        ("where(user CONTAIN x)", 12, "'CONTAIN' is not an operator", "did you mean CONTAINS?"),
        ("where(user ISTARTSWITH x)", 12, "not an operator", "did you mean ISTARTS-WITH?"),
        ("where(usr=alice)", 7, "unknown key 'usr'", "did you mean user?"),
        ("where(reslt=x)", 7, "unknown key 'reslt'", "did you mean result?"),
        ("where(a=1 and b=2)", 11, "unexpected 'and'", "upper case: AND"),
        ("where(x or y)", 9, "unexpected 'or'", "upper case: OR"),
        ("groupyb(user)", 1, "unknown clause 'groupyb'", "did you mean groupby()?"),
        ("where(user=x) grupby(user)", 15, "unknown clause 'grupby'", "did you mean groupby()?"),
        ('where(user="abc)', 12, "unterminated quoted value", "same quote"),
        ("where(user=alice", 17, "the query ends too early", "close every"),
        ("where(user=)", 12, "unexpected ')'", ""),
        ("where(alice bob and carol)", 17, "unexpected 'and'", "upper case: AND"),
        ("where(user CONTAIN x)", 12, "not an operator", 'quote it: "CONTAIN"'),
        ("limit(0)", 7, "limit() needs a positive whole number", ""),
        ("limit(ten)", 7, "limit() needs a positive whole number", ""),
        ("sort(up)", 6, "sort() takes asc or desc", "sort(desc)"),
        ("timeslice(201)", 11, "timeslice() takes 1 to 200 buckets", "timeslice(1h)"),
        ("timeslice(5y)", 11, "a width like 30m", ""),
        ("calculate(cnt)", 11, "unknown calculation 'cnt'", "did you mean count?"),
        ("calculate(nope)", 11, "unknown calculation 'nope'", "use count, unique, sum"),
        ("where(a=1) where(b=2)", 12, "where() appears twice", "keep one of them"),
        ("select(a) WHERE(b) Where(c)", 20, "where() appears twice", "keep one of them"),
        ("groupby(user) where(a=1)", 15, "where() comes too late", "select() first, then where"),
        ("where(a=1) select(a)", 12, "select() comes too late", "select() first"),
        ("where(user CONTAINS)", 20, "unexpected ')'", "a quoted value or a word"),
        ("where(a = 1 AND)", 16, "unexpected ')'", "expected '(' or NOT or a /regex/"),
        ("calculate(sum)", 11, "sum needs a key", "calculate(sum:some_key)"),
        ("calculate(bytes:raw)", 11, "bytes takes no key", ""),
        ("calculate(percentile(101):x.y)", 11, "between 0 and 100", ""),
        ("calculate(median(5):x.y)", 11, "takes no argument", "percentile(95)"),
        ("calculate(sum:timestamp)", 11, "needs a numeric key", ""),
        ("calculate(average:mitre_tactics)", 11, "is a list", ""),
        ("groupby(a.a, b.b, c.c, d.d, e.e, f.f)", 34, "at most 5 keys", "fewer keys"),
        ("limit(1) limit(2)", 10, "limit() appears twice", "keep one"),
        ("having(count > 2)", 1, "having() filters groups", "groupby"),
        ("groupby(user) calculate(count) having(unique:user > 2)", 39, "refers to unique:user", ""),
        ("having(count > x) groupby(user)", 16, "'x' is not a number", ""),
        ("where(user IN alice)", 15, "IN takes a list", ""),
        ("where(user CONTAINS [a, b])", 21, "CONTAINS takes a single value", ""),
        ("where(user IN [])", 15, "an empty list matches nothing", ""),
        ("where(error_code > abc)", 20, "'abc' is not one", "CONTAINS"),
        ("where(error_code = abc)", 20, "'abc' is not one", ""),
        ("where(is_interactive = maybe)", 24, "true or false", "is_interactive=true"),
        ("where(timestamp > yesterdayish)", 19, "is not a time", "ISO 8601"),
        ("where(source_ip = IP(10.0.0.0/33))", 19, "not an IP address or CIDR", "IP(10.0.0.0/8)"),
        ("where(user = /[/)", 14, "invalid regular expression", ""),
        ("where(user STARTS-WITH-ALL [a])", 12, "not an operator", "STARTS-WITH-ANY"),
        ("where(user CONTAINS NOCASE(x))", 21, "CONTAINS takes a plain or quoted value", ""),
        ("where(user = [a])", 14, "= takes a single value", ""),
    ],
)
def test_error_is_positioned_with_a_hint(query: str, column: int, message: str, hint: str) -> None:
    error = _error(query)
    assert message in error.message
    assert error.line == 1
    assert error.column == column
    assert hint in error.hint
    assert error.excerpt == f"{query}\n{' ' * (column - 1)}^"


def test_errors_on_a_later_line_point_at_that_line() -> None:
    error = _error("where(user=alice\n  AND usr=bob)")
    assert (error.line, error.column) == (2, 7)
    assert error.excerpt == "  AND usr=bob)\n      ^"


# ---- property-based: any text either compiles or fails with a position inside it ----------

_KEYS = st.sampled_from(["user", "result", "error_code", "source_json.a.b", "x.y", "usr", "raw"])
_VALUES = st.one_of(
    st.from_regex(r"[A-Za-z0-9_@.:-]{1,12}", fullmatch=True),
    st.text(max_size=8).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["1e3", "-4.5", "IP(10.0.0.0/8)", "NOCASE(x)", "/a.*b/i", "[a, b]", "[]"]),
)
_OPS = st.sampled_from([*OPERATORS, "NOT =", "CONTAIN", "=="])


@st.composite
def _exprs(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 4 if depth < 3 else 1))
    if kind == 0:
        return f"{draw(_KEYS)} {draw(_OPS)} {draw(_VALUES)}"
    if kind == 1:
        return draw(st.one_of(_VALUES, _KEYS))
    if kind == 2:
        return f"NOT {draw(_exprs(depth + 1))}"
    if kind == 3:
        return f"({draw(_exprs(depth + 1))})"
    joiner = draw(st.sampled_from([" AND ", " OR ", " and ", " "]))
    return draw(_exprs(depth + 1)) + joiner + draw(_exprs(depth + 1))


_CLAUSES = st.lists(
    st.sampled_from(
        [
            "groupby(user)",
            "groupby(x.y, result)",
            "calculate(count)",
            "calculate(unique:user)",
            "calculate(pctl95:error_code)",
            "having(count > 2)",
            "sort(asc)",
            "limit(5)",
            "timeslice(1h)",
            "timeslice(0)",
            "select(user AS u)",
            "limit(-1)",
        ]
    ),
    max_size=3,
)


def _outcome(query: str) -> Compiled | QuerySyntaxError:
    try:
        return compile_query(parse(query), SCOPE, limit=10)
    except QuerySyntaxError as error:
        return error


def _check(query: str) -> None:
    outcome = _outcome(query)
    if isinstance(outcome, QuerySyntaxError):
        lines = query.split("\n") or [""]
        assert 1 <= outcome.line <= len(lines)
        assert 1 <= outcome.column <= len(lines[outcome.line - 1]) + 1
        assert outcome.message
        assert outcome.excerpt.endswith("^")
        return
    assert outcome.sql.startswith("SELECT ")
    assert "{start:DateTime64(3, 'UTC')}" in outcome.sql


@settings(max_examples=300, deadline=None)
@given(body=_exprs(), clauses=_CLAUSES, wrapped=st.booleans())
def test_generated_queries_compile_or_fail_with_a_position(
    body: str, clauses: list[str], wrapped: bool
) -> None:
    _check(" ".join([f"where({body})" if wrapped else body, *clauses]))


@pytest.mark.parametrize(("segment", "param"), [("0", ("Int64", 1)), ("²", ("String", "²"))])
def test_only_ascii_digits_make_an_array_position(segment: str, param: tuple[str, object]) -> None:
    compiled = compile_query(parse(f"where(properties.a.{segment} = x)"), SCOPE, limit=10)
    assert param in compiled.params.values()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_arbitrary_text_compiles_or_fails_with_a_position(text: str) -> None:
    _check(text)
