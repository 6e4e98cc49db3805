"""The LEQL syntax tree: plain frozen data the parser builds and the compiler reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node starts in the query text (1-based line and column)."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Key:
    """A key as written: a normalized field, a raw path or a regex group name."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Text:
    """A literal value; ``quoted`` is false for a bare word."""

    text: str
    quoted: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class NoCase:
    """``NOCASE("...")``: compare without regard to case."""

    text: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class IpRange:
    """``IP(10.0.0.0/8)``: an address or CIDR block, as written."""

    text: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Regex:
    """``/pattern/`` or ``/pattern/i``."""

    pattern: str
    ignore_case: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class ValueList:
    """``[a, b, "c"]`` for the -ANY/-ALL and IN operators."""

    items: tuple[Text, ...]
    pos: Pos


Value = Text | NoCase | IpRange | Regex | ValueList


@dataclass(frozen=True, slots=True)
class Compare:
    """``key [NOT] op value``; ``op`` is upper-cased (``=``, ``CONTAINS``, ``IIN`` ...)."""

    key: Key
    op: str
    negated: bool
    value: Value
    pos: Pos


@dataclass(frozen=True, slots=True)
class Word:
    """A bare or quoted word alone: a keyword search, or key presence when it names a key."""

    text: str
    quoted: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class RegexSearch:
    """A regex alone, matched against the raw record."""

    regex: Regex


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT expr``."""

    expr: Expr


@dataclass(frozen=True, slots=True)
class And:
    """``a AND b [AND ...]``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """``a OR b [OR ...]``."""

    items: tuple[Expr, ...]


Expr = Compare | Word | RegexSearch | Not | And | Or


@dataclass(frozen=True, slots=True)
class SelectItem:
    """One ``select()`` entry, with its optional ``AS`` alias."""

    key: Key
    alias: str | None


CalcFn = Literal[
    "count", "unique", "sum", "average", "min", "max", "median", "percentile", "stddev", "bytes"
]


@dataclass(frozen=True, slots=True)
class Calc:
    """A ``calculate()`` function; ``label`` is how its column is named in results."""

    fn: CalcFn
    key: Key | None
    percentile: float | None
    label: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Having:
    """``having(calc op number)``."""

    calc: Calc
    op: str
    number: float
    pos: Pos


@dataclass(frozen=True, slots=True)
class Timeslice:
    """``timeslice(n)`` (a bucket count) or ``timeslice(30m)`` (a bucket width)."""

    buckets: int | None
    width_ms: int | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Query:
    """A whole LEQL query."""

    text: str
    select: tuple[SelectItem, ...] = ()
    where: Expr | None = None
    groupby: tuple[Key, ...] = ()
    calculate: Calc | None = None
    having: Having | None = None
    sort: Literal["asc", "desc"] | None = None
    limit: int | None = None
    timeslice: Timeslice | None = None
