"""AST to parameterized ClickHouse SQL; no text from the query ever becomes SQL text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from hubsight.errors import QuerySyntaxError
from hubsight.query import ast
from hubsight.query.keys import Field, KeyResolver, QueryWarning, group_index, named_groups
from hubsight.query.params import Params, ParamValue
from hubsight.query.predicates import Predicates, number_of, regex_text
from hubsight.store.schema import EVENTS_TABLE

ResultKind = Literal["events", "table", "timeseries"]
# The order events are listed in; it is total, so a cursor resumes exactly where a page ended.
SORT_KEY = (
    "timestamp",
    "log_name",
    "source_topic",
    "ifNull(source_partition, -1)",
    "ifNull(source_offset, -1)",
    "ifNull(record_index, -1)",
)
CURSOR_TYPES = ("DateTime64(3, 'UTC')", "String", "String", "Int64", "Int64", "Int64")
# Columns every selected-events row carries so that a cursor can be built from it.
_POSITION_COLUMNS = (
    "timestamp, log_set, log_name, source_topic, source_partition, source_offset, record_index"
)
# Tokens as the raw record's full-text index (splitByNonAlpha) cuts them: ASCII letters and
# digits, and every non-ASCII character.
_TOKEN = re.compile("[A-Za-z0-9\u0080-\U0010ffff]+")
_WORD_CLASS = r"[A-Za-z0-9\x{80}-\x{10FFFF}]"


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Which events a search looks at: a UTC window and optional log sets and log names."""

    start: datetime
    end: datetime
    log_sets: tuple[str, ...] = ()
    log_names: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CursorKey:
    """The sort key of the last event of a page."""

    values: tuple[datetime, str, str, int, int, int]


@dataclass(frozen=True, kw_only=True)
class Compiled:
    """One SQL statement with its parameters and how to read its rows."""

    kind: ResultKind
    sql: str
    params: dict[str, tuple[str, ParamValue]]
    columns: list[str]
    bucket_ms: int | None = None
    origin_ms: int | None = None
    selected: list[str] = field(default_factory=list)
    warnings: list[QueryWarning] = field(default_factory=list)
    # A grouped series filtered by having(): buckets a group has no row in stay out, not zero.
    sparse: bool = False


def compile_query(
    query: ast.Query,
    scope: Scope,
    *,
    limit: int,
    cursor: CursorKey | None = None,
    strict: bool = False,
) -> Compiled:
    """Compile a parsed query over ``scope``; ``limit`` caps events or groups returned.

    Unknown keys read the raw record and are listed in ``warnings``; ``strict`` refuses them.
    """
    return _Compiler(query, scope, strict).compile(limit, cursor)


class _Compiler:
    def __init__(self, query: ast.Query, scope: Scope, strict: bool = False) -> None:
        self.query = query
        self.scope = scope
        self.params = Params()
        self.keys = KeyResolver(query.text, self.params, strict=strict)
        self.preds = Predicates(query.text, self.params)

    def fail(self, message: str, pos: ast.Pos, hint: str = "") -> QuerySyntaxError:
        return self.preds.fail(message, pos, hint)

    def compile(self, limit: int, cursor: CursorKey | None) -> Compiled:
        conditions = [self.scope_sql()]
        if self.query.where is not None:
            self.collect_groups(self.query.where)
            conditions.append(self.expr(self.query.where))
        q = self.query
        if q.having is not None and not q.groupby:
            raise self.fail("having() filters groups", q.having.pos, "add groupby(key)")
        if q.timeslice is not None:
            return self.timeseries(conditions, q.timeslice, limit)
        if q.groupby or q.calculate is not None:
            return self.table(conditions, limit)
        return self.events(conditions, limit, cursor)

    def scope_sql(self) -> str:
        start = self.params.add("DateTime64(3, 'UTC')", self.scope.start, "start")
        end = self.params.add("DateTime64(3, 'UTC')", self.scope.end, "end")
        parts = [f"timestamp >= {start}", f"timestamp < {end}"]
        if self.scope.log_sets:
            sets = self.params.add("Array(String)", list(self.scope.log_sets), "log_sets")
            parts.append(f"log_set IN {sets}")
        if self.scope.log_names:
            names = self.params.add("Array(String)", list(self.scope.log_names), "log_names")
            parts.append(f"log_name IN {names}")
        return " AND ".join(parts)

    def collect_groups(self, node: ast.Expr) -> None:
        """Register regex named groups as keys before anything refers to them."""
        if isinstance(node, ast.And | ast.Or):
            for item in node.items:
                self.collect_groups(item)
        elif isinstance(node, ast.Not):
            self.collect_groups(node.expr)
        elif isinstance(node, ast.RegexSearch):
            self.add_groups(node.regex, "raw")
        elif isinstance(node, ast.Compare) and isinstance(node.value, ast.Regex):
            self.add_groups(node.value, self.keys.resolve(node.key).text())

    def add_groups(self, regex: ast.Regex, target: str) -> None:
        names = named_groups(regex.pattern)
        if names:
            pattern = self.params.add("String", regex_text(regex))
            for name in names:
                index = group_index(regex.pattern, name)
                self.keys.add_group(name, f"extractGroups({target}, {pattern})[{index}]")

    def expr(self, node: ast.Expr) -> str:
        if isinstance(node, ast.And | ast.Or):
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return "(" + joiner.join(self.expr(item) for item in node.items) + ")"
        if isinstance(node, ast.Not):
            return f"NOT ({self.expr(node.expr)})"
        if isinstance(node, ast.RegexSearch):
            return f"match(raw, {self.params.add('String', regex_text(node.regex))})"
        if isinstance(node, ast.Word):
            if not node.quoted and self.keys.known(node.text):
                return self.keys.resolve(ast.Key(node.text, node.pos)).present
            return self.keyword(node.text)
        condition = self.preds.compare(self.keys.resolve(node.key), node)
        return f"NOT ({condition})" if node.negated else condition

    def keyword(self, text: str) -> str:
        """Case-sensitive, token-bounded search of the raw record, served by its text index."""
        tokens = _TOKEN.findall(text)
        if tokens == [text]:
            return f"hasToken(raw, {self.params.add('String', text)})"
        if not tokens:
            return f"position(raw, {self.params.add('String', text)}) > 0"
        head = f"(?:^|[^{_WORD_CLASS[1:-1]}])" if _TOKEN.match(text[0]) else ""
        tail = f"(?:[^{_WORD_CLASS[1:-1]}]|$)" if _TOKEN.match(text[-1]) else ""
        pattern = head + _re2_literal(text) + tail
        every = self.params.add("Array(String)", tokens)
        return f"(hasAllTokens(raw, {every}) AND match(raw, {self.params.add('String', pattern)}))"

    def events(self, conditions: list[str], limit: int, cursor: CursorKey | None) -> Compiled:
        descending = self.query.sort != "asc"
        if cursor is not None:
            values: tuple[ParamValue, ...] = cursor.values
            marks = [
                self.params.add(t, v, f"c{i}")
                for i, (t, v) in enumerate(zip(CURSOR_TYPES, values, strict=True))
            ]
            sign = "<" if descending else ">"
            conditions.append(f"timestamp {sign}= {marks[0]}")
            conditions.append(f"({', '.join(SORT_KEY)}) {sign} ({', '.join(marks)})")
        selected: list[str] = []
        columns = "*"
        if self.query.select:
            exprs = []
            for i, item in enumerate(self.query.select):
                exprs.append(f"{self.keys.resolve(item.key).sql} AS s{i}")
                selected.append(item.alias or item.key.name)
            columns = f"{_POSITION_COLUMNS}, {', '.join(exprs)}"
        direction = " DESC" if descending else ""
        order = ", ".join(k + direction for k in SORT_KEY)
        where = " AND ".join(conditions)
        count = self.params.add("UInt32", limit, "limit")
        # One query, as a person would write it: ClickHouse filters the granules by the first
        # sort key as it reads (top-N filtering on the timestamp) and reads the other columns
        # of the page's rows only (lazy materialization). Finding the page's last timestamp
        # first, in a query of its own, evaluated the filter twice: a keyword page cost 1.6x
        # the hand-written query's CPU, a user's page 1.2x (bench/search.py).
        sql = (
            f"SELECT {columns} FROM {EVENTS_TABLE} WHERE {where} "  # noqa: S608
            f"ORDER BY {order} LIMIT {count}"
        )
        return Compiled(kind="events", sql=sql, params=self.params.values, columns=selected,
                        selected=selected, warnings=self.keys.warnings)  # fmt: skip

    def calc(self, conditions: list[str]) -> tuple[str, str]:
        """The aggregate's SQL and its column label (``count`` when none is given).

        A calculation over a key looks only at events that have the key: its presence joins
        the conditions, where the store can skip the other events before aggregating.
        """
        calc = self.query.calculate
        if calc is None:
            return "count()", "count"
        if calc.fn == "count" and calc.key is None:
            return "count()", calc.label
        if calc.fn == "bytes":
            return "sum(length(raw))", calc.label
        key = self.keys.resolve(calc.key or ast.Key("", calc.pos))
        if key.present != "1" and key.present not in conditions:
            conditions.append(key.present)
        if calc.fn == "count":
            return "count()", calc.label
        if calc.fn == "unique":
            return f"uniqExact({key.sql})", calc.label
        value = self.numeric(key, calc)
        if calc.fn == "percentile":
            # Interpolated between the two nearest values, as InsightIDR documents percentiles.
            level = self.params.add("Float64", (calc.percentile or 0) / 100)
            return f"quantileExactInclusive({level})({value})", calc.label
        function = {
            "sum": "sum",
            "average": "avg",
            "min": "min",
            "max": "max",
            "median": "median",
            "stddev": "stddevPop",
        }[calc.fn]
        if function == "median":
            return f"quantileExactInclusive(0.5)({value})", calc.label
        if function == "sum":
            # A sum over nothing is 0, as in InsightIDR; ClickHouse's sum of NULLs is NULL.
            return f"ifNull(sum({value}), 0)", calc.label
        return f"{function}({value})", calc.label

    def numeric(self, key: Field, calc: ast.Calc) -> str:
        if key.kind in {"time", "bool"}:
            raise self.fail(f"{calc.fn} needs a numeric key; {key.name} is a {key.kind}", calc.pos)
        if key.kind == "array":
            raise self.fail(f"{calc.fn} needs a numeric key; {key.name} is a list", calc.pos)
        return key.sql if key.kind == "number" else number_of(key.sql)

    def groups(self, conditions: list[str]) -> tuple[list[str], list[str]]:
        """``g0 .. gN`` expressions for the groupby keys; their presence joins the conditions."""
        exprs = []
        for i, key in enumerate(self.query.groupby):
            resolved = self.keys.resolve(key)
            if resolved.present != "1":
                conditions.append(resolved.present)
            exprs.append(f"{resolved.sql} AS g{i}")
        return exprs, [key.name for key in self.query.groupby]

    def table(self, conditions: list[str], limit: int) -> Compiled:
        group_exprs, names = self.groups(conditions)
        aggregate, label = self.calc(conditions)
        columns = ", ".join([*group_exprs, f"{aggregate} AS v"])
        sql = f"SELECT {columns} FROM {EVENTS_TABLE} "  # noqa: S608 - values are parameters
        sql += f"WHERE {' AND '.join(conditions)}"
        if group_exprs:
            aliases = ", ".join(f"g{i}" for i in range(len(group_exprs)))
            sql += f" GROUP BY {aliases}"
            sql += self.having(label)
            direction = "ASC" if self.query.sort == "asc" else "DESC"
            limit_param = self.params.add("UInt32", limit, "limit")
            sql += f" ORDER BY v {direction}, {aliases} LIMIT {limit_param}"
        return Compiled(
            kind="table",
            sql=sql,
            params=self.params.values,
            columns=[*names, label],
            warnings=self.keys.warnings,
        )

    def having(self, label: str) -> str:
        """`` HAVING v op n`` for the query's having(), or nothing."""
        having = self.query.having
        if having is None:
            return ""
        if having.calc.label != label:
            raise self.fail(
                f"having() refers to {having.calc.label} but the query calculates {label}",
                having.calc.pos, f"write having({label} {having.op} ...)",
            )  # fmt: skip
        return f" HAVING v {having.op} {self.params.add('Float64', having.number)}"

    def timeseries(self, conditions: list[str], slice_: ast.Timeslice, limit: int) -> Compiled:
        span_ms = (self.scope.end - self.scope.start) // _MS
        width = slice_.width_ms or max(1, math.ceil(span_ms / (slice_.buckets or 1)))
        if span_ms // width > 10_000:
            raise self.fail(
                f"timeslice() would make {span_ms // width} buckets over this time range",
                slice_.pos, "use a wider bucket or a shorter time range",
            )  # fmt: skip
        # Width buckets fall on multiples of the width (1h buckets start on the hour); bucket
        # counts split the window itself.
        first = epoch_ms(self.scope.start)
        first -= first % width if slice_.width_ms else 0
        origin = self.params.add("Int64", first, "origin")
        step = self.params.add("Int64", width, "width")
        bucket = f"intDiv(toUnixTimestamp64Milli(timestamp) - {origin}, {step}) AS b"
        group_exprs, names = self.groups(conditions)
        aggregate, label = self.calc(conditions)
        where = " AND ".join(conditions)
        having = self.having(label)
        if not group_exprs:
            sql = (
                f"SELECT {bucket}, {aggregate} AS v FROM {EVENTS_TABLE} "  # noqa: S608
                f"WHERE {where} GROUP BY b{having} ORDER BY b"
            )
        else:
            sql = self.ranked_series(bucket, group_exprs, aggregate, where, having, limit)
        return Compiled(
            kind="timeseries",
            sql=sql,
            params=self.params.values,
            columns=["timestamp", *names, label],
            bucket_ms=width,
            origin_ms=first,
            warnings=self.keys.warnings,
            sparse=bool(group_exprs and having),
        )

    def ranked_series(
        self,
        bucket: str,
        group_exprs: list[str],
        aggregate: str,
        where: str,
        having: str,
        limit: int,
    ) -> str:
        """A grouped series of the top ``limit`` groups by their total over the whole window.

        Each row carries ``r``, its group's rank (1 = largest total), or 0 for the events of
        every other group, which are aggregated together as one "other" series.
        """
        exprs = [e.rsplit(" AS ", 1)[0] for e in group_exprs]
        aliases = [f"g{i}" for i in range(len(exprs))]
        keys = ", ".join(f"{e} AS {a}" for e, a in zip(exprs, aliases, strict=True))
        top = (
            f"SELECT groupArray(tuple({', '.join(aliases)})) FROM (SELECT {keys}, "  # noqa: S608
            f"{aggregate} AS t FROM {EVENTS_TABLE} WHERE {where} GROUP BY {', '.join(aliases)} "
            f"ORDER BY t DESC, {', '.join(aliases)} "
            f"LIMIT {self.params.add('UInt32', limit, 'limit')})"
        )
        rank = f"indexOf(({top}), tuple({', '.join(exprs)})) AS r"
        shown = ", ".join(
            f"if(r > 0, {e}, NULL) AS {a}" for e, a in zip(exprs, aliases, strict=True)
        )
        return (
            f"SELECT {bucket}, {rank}, {shown}, {aggregate} AS v FROM {EVENTS_TABLE} "  # noqa: S608
            f"WHERE {where} GROUP BY b, r, {', '.join(aliases)}{having} "
            f"ORDER BY b, r = 0, r"
        )


_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(when: datetime) -> int:
    """Milliseconds since 1970 UTC, exactly."""
    return (when - _EPOCH) // _MS


def _re2_literal(text: str) -> str:
    out = []
    for char in text:
        if char.isalnum() or ord(char) > 127:
            out.append(char)
        elif char.isprintable() and char != " ":
            out.append("\\" + char)
        else:
            out.append(f"\\x{{{ord(char):X}}}")
    return "".join(out)
