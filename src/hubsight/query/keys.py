"""What a LEQL key means in SQL: a normalized column, a path into ``raw``, or a regex group."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from hubsight.errors import QuerySyntaxError
from hubsight.query import ast
from hubsight.query.params import Params
from hubsight.query.parser import suggest
from hubsight.store.schema import event_columns

Kind = Literal["string", "number", "time", "bool", "array"]
RAW_PREFIX = "source_json."
# InsightIDR's standard key names for what hubsight calls otherwise: queries written for
# InsightIDR (by people or by tools such as pySigma's InsightIDR backend) run unchanged.
ALIASES = {
    "source_user": "user",
    "source_account": "user",
    "target_account": "target_user",
    "destination_user": "target_user",
    "destination_account": "target_user",
}
# Columns that are not keys: the raw record itself is searched by keywords and raw paths.
_NOT_KEYS = {"raw"}


@dataclass(frozen=True, slots=True)
class Field:
    """A key resolved to SQL: ``sql`` yields its value, ``present`` is true where it is set."""

    name: str
    sql: str
    kind: Kind
    nullable: bool
    present: str

    def text(self) -> str:
        """The value as a string, '' when absent."""
        if self.kind in {"string", "array"}:
            return self.sql
        return f"ifNull(toString({self.sql}), '')" if self.nullable else f"toString({self.sql})"


def _kind(sql_type: str) -> tuple[Kind, bool]:
    nullable = sql_type.startswith("Nullable(")
    if "DateTime64" in sql_type:
        return "time", nullable
    if "Array(" in sql_type:
        return "array", False
    if "Int64" in sql_type or "Float64" in sql_type:
        return "number", nullable
    if "Bool" in sql_type:
        return "bool", nullable
    return "string", False


@cache
def normalized_fields() -> dict[str, Field]:
    """Every normalized column usable as a key, by lower-cased name."""
    fields: dict[str, Field] = {}
    for name, sql_type in event_columns():
        if name in _NOT_KEYS:
            continue
        kind, nullable = _kind(sql_type)
        if kind == "array":
            present = f"notEmpty({name})"
        elif nullable:
            present = f"isNotNull({name})"
        elif kind == "string":
            present = f"{name} != ''"
        else:
            present = "1"
        fields[name.lower()] = Field(name, name, kind, nullable, present)
    return fields


def named_groups(pattern: str) -> list[str]:
    """The named groups of a regex, in group-number order."""
    compiled = re.compile(pattern)
    return sorted(compiled.groupindex, key=compiled.groupindex.__getitem__)


def group_index(pattern: str, name: str) -> int:
    """The 1-based number of a named group, as ClickHouse's ``extractGroups`` counts."""
    return re.compile(pattern).groupindex[name]


@dataclass(frozen=True, slots=True)
class QueryWarning:
    """Something a query does that it may not mean: shown to the person, not an error."""

    message: str
    hint: str
    line: int
    column: int

    def to_json(self) -> dict[str, str | int]:
        """The shape the API and the CLI's JSON carry."""
        return {
            "message": self.message,
            "hint": self.hint,
            "line": self.line,
            "column": self.column,
        }


class KeyResolver:
    """Turns keys into ``Field``s for one compilation, adding raw-path segments as parameters.

    A key that is neither a field, an alias, a regex group nor a dotted path is looked up in the
    raw record (top level, then under ``properties``), as InsightIDR does, and a warning with the
    nearest known key is recorded; with ``strict`` it is an error instead.
    """

    def __init__(self, query_text: str, params: Params, *, strict: bool = False) -> None:
        self.query_text = query_text
        self.params = params
        self.strict = strict
        self.groups: dict[str, Field] = {}
        self.warnings: list[QueryWarning] = []

    def add_group(self, name: str, sql: str) -> None:
        """Make a regex's named group usable as a key."""
        self.groups[name.lower()] = Field(name, sql, "string", False, f"{sql} != ''")

    def known(self, name: str) -> bool:
        """Whether a bare word names a key (then it means presence, not a keyword search)."""
        lowered = name.lower()
        return (
            lowered in self.groups
            or lowered in normalized_fields()
            or lowered in ALIASES
            or (lowered.startswith(RAW_PREFIX) and len(name) > len(RAW_PREFIX))
        )

    def resolve(self, key: ast.Key) -> Field:
        """The field a key names; unknown keys read the raw record (or fail when strict)."""
        lowered = key.name.lower()
        if lowered in self.groups:
            return self.groups[lowered]
        if lowered in normalized_fields():
            return normalized_fields()[lowered]
        if lowered in ALIASES:
            return normalized_fields()[ALIASES[lowered]]
        path = key.name[len(RAW_PREFIX) :] if lowered.startswith(RAW_PREFIX) else key.name
        if "." in key.name and all(path.split(".")):
            return self.raw_path(key.name, path.split("."))
        choices = [f.name for f in normalized_fields().values()] + list(self.groups)
        near = suggest(key.name, choices)
        hint = f"did you mean {near}? " if near else ""
        if self.strict:
            raise QuerySyntaxError(
                f"unknown key '{key.name}'",
                query=self.query_text,
                line=key.pos.line,
                column=key.pos.column,
                hint=hint + f"a path into the raw record is written {RAW_PREFIX}<path>",
            )
        if not any(w.line == key.pos.line and w.column == key.pos.column for w in self.warnings):
            self.warnings.append(
                QueryWarning(
                    f"'{key.name}' is not a hubsight key: read from the raw record's "
                    f"'{key.name}' or 'properties.{key.name}' (any case)",
                    hint + 'a strict search (--strict, or "strict": true in the API) '
                    "refuses unknown keys",
                    key.pos.line,
                    key.pos.column,
                )
            )
        return self.raw_key(key.name)

    def _args(self, segments: list[str]) -> str:
        """JSON path arguments; a whole number is an array position (0 is the first).

        Only ASCII digits make a number: ``str.isdigit`` also holds for '²', which ``int``
        refuses (a fuzzed query was a ValueError).
        """
        return ", ".join(
            self.params.add("Int64", int(s) + 1)
            if s.isascii() and s.isdigit()
            else self.params.add("String", s)
            for s in segments
        )

    def raw_path(self, name: str, segments: list[str]) -> Field:
        """A case-insensitive JSON path into the raw record."""
        args = self._args(segments)
        return Field(name, _json_value(args), "string", False, _json_present(args))

    def raw_key(self, name: str) -> Field:
        """An unknown key: the raw record's top-level key of that name, else under properties."""
        top = self._args([name])
        nested = self._args(["properties", name])
        sql = f"if({_json_present(top)}, {_json_value(top)}, {_json_value(nested)})"
        present = f"({_json_present(top)} OR {_json_present(nested)})"
        return Field(name, sql, "string", False, present)


def _json_value(args: str) -> str:
    """A JSON value as text: a string decoded, anything else (number, object ...) as written."""
    raw = f"JSONExtractRawCaseInsensitive(raw, {args})"
    return f"if(startsWith({raw}, '\"'), JSONExtractStringCaseInsensitive(raw, {args}), {raw})"


def _json_present(args: str) -> str:
    return f"JSONExtractRawCaseInsensitive(raw, {args}) != ''"
