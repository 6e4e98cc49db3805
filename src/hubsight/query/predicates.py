"""SQL conditions for ``key op value``, by the kind of value the key holds."""

from __future__ import annotations

import ipaddress

from hubsight.errors import QuerySyntaxError
from hubsight.query import ast
from hubsight.query.keys import Field
from hubsight.query.params import Params
from hubsight.query.parser import parse_number
from hubsight.query.timerange import parse_instant

# Leading number of a text value; units after it are ignored, as InsightIDR does.
NUMBER_RE = r"'^\\s*[-+]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?'"
_ORDERING = {">", ">=", "<", "<="}


def number_of(text_sql: str) -> str:
    """A text expression read as a number (NULL when it does not start with one)."""
    return f"toFloat64OrNull(extract({text_sql}, {NUMBER_RE}))"


class Predicates:
    """Builds conditions for one compilation, registering values as parameters."""

    def __init__(self, query_text: str, params: Params) -> None:
        self.query_text = query_text
        self.params = params

    def fail(self, message: str, pos: ast.Pos, hint: str = "") -> QuerySyntaxError:
        """A positioned error about the query being compiled."""
        return QuerySyntaxError(
            message, query=self.query_text, line=pos.line, column=pos.column, hint=hint
        )

    def compare(self, field: Field, node: ast.Compare) -> str:
        """The condition for one comparison, before its NOT."""
        op, value = node.op, node.value
        if op == "!=":
            return f"NOT ({self.compare_eq(field, value, node)})"
        if op == "=":
            return self.compare_eq(field, value, node)
        if op in _ORDERING:
            return self.ordering(field, op, value)
        if field.kind == "array":
            inner = Field("elem", "elem", "string", False, "elem != ''")
            return f"arrayExists(elem -> {self.text_op(inner.sql, op, value)}, {field.sql})"
        return self.text_op(field.text(), op, value)

    def compare_eq(self, field: Field, value: ast.Value, node: ast.Compare) -> str:
        """``key = value`` for every kind of value."""
        if field.kind == "array":
            inner = Field("elem", "elem", "string", False, "elem != ''")
            return f"arrayExists(elem -> {self.compare_eq(inner, value, node)}, {field.sql})"
        if isinstance(value, ast.Text) and field.kind in {"number", "time", "bool"}:
            return self.ordering(field, "=", value)
        text = field.text()
        if isinstance(value, ast.NoCase):
            return f"lowerUTF8({text}) = {self.params.add('String', value.text.lower())}"
        if isinstance(value, ast.Regex):
            return f"match({text}, {self.params.add('String', regex_text(value))})"
        if isinstance(value, ast.IpRange):
            cidr = self.params.add("String", self.cidr(value))
            valid = f"(isIPv4String({text}) OR isIPv6String({text}))"
            return f"if({valid}, isIPAddressInRange({text}, {cidr}), 0)"
        if not isinstance(value, ast.Text):
            raise self.fail(f"= takes a single value, not a list, on {field.name}", value.pos)
        equal = f"{text} = {self.params.add('String', value.text)}"
        number = parse_number(value.text) if not value.quoted else None
        if number is None or not _plain_number(value.text):
            return equal
        return f"({equal} OR {number_of(text)} = {self.params.add('Float64', number)})"

    def ordering(self, field: Field, op: str, value: ast.Value) -> str:
        """``>``, ``>=``, ``<``, ``<=`` (and ``=`` on numbers, times and booleans)."""
        if not isinstance(value, ast.Text):
            raise self.fail(f"{op} on {field.name} takes a plain value", value.pos)
        if field.kind == "bool" and op == "=":
            if value.text.lower() not in {"true", "false"}:
                raise self.fail(
                    f"{field.name} is true or false, not '{value.text}'", value.pos,
                    f"write {field.name}=true or {field.name}=false",
                )  # fmt: skip
            placeholder = self.params.add("Bool", value.text.lower() == "true")
        elif field.kind == "time":
            when = parse_instant(value.text)
            if when is None:
                raise self.fail(
                    f"'{value.text}' is not a time", value.pos,
                    "write an ISO 8601 time (2024-05-01T10:00:00Z) or epoch milliseconds",
                )  # fmt: skip
            placeholder = self.params.add("DateTime64(3, 'UTC')", when)
        else:
            number = parse_number(value.text)
            if number is None:
                raise self.fail(
                    f"{op} compares numbers; '{value.text}' is not one", value.pos,
                    "use CONTAINS, STARTS-WITH or = to compare text",
                )  # fmt: skip
            placeholder = self.params.add("Float64", number)
        subject = field.sql if field.kind != "string" else number_of(field.sql)
        if field.kind == "array":
            test = f"ifNull({number_of('elem')} {op} {placeholder}, 0)"
            return f"arrayExists(elem -> {test}, {field.sql})"
        if field.kind == "string" or field.nullable:
            return f"ifNull({subject} {op} {placeholder}, 0)"
        return f"{subject} {op} {placeholder}"

    def text_op(self, text: str, op: str, value: ast.Value) -> str:
        """The text operators (CONTAINS ..., IN, IIN) on a text expression."""
        if isinstance(value, ast.ValueList):
            return self.list_op(text, op, [item.text for item in value.items])
        if not isinstance(value, ast.Text):
            raise self.fail(f"{op} takes a plain or quoted value", value.pos)
        needle = value.text
        if op == "CONTAINS":
            return f"position({text}, {self.params.add('String', needle)}) > 0"
        if op == "ICONTAINS":
            return f"positionCaseInsensitiveUTF8({text}, {self.params.add('String', needle)}) > 0"
        if op == "STARTS-WITH":
            return f"startsWith({text}, {self.params.add('String', needle)})"
        # ILIKE with a literal prefix: ClickHouse matches it without lower-casing every value.
        return f"{text} ILIKE {self.params.add('String', _like_literal(needle) + '%')}"

    def list_op(self, text: str, op: str, items: list[str]) -> str:
        """The list operators: -ANY, -ALL, IN and IIN."""
        lowered = op.startswith("I") and op != "IN"
        values = [i.lower() for i in items] if lowered else items
        array = self.params.add("Array(String)", values)
        if op in {"IN", "IIN"}:
            return f"has({array}, {'lowerUTF8(' + text + ')' if lowered else text})"
        if op == "CONTAINS-ANY":
            return f"multiSearchAny({text}, {array})"
        if op == "ICONTAINS-ANY":
            return f"multiSearchAnyCaseInsensitiveUTF8({text}, {array})"
        if op == "CONTAINS-ALL":
            return f"arrayAll(x -> position({text}, x) > 0, {array})"
        if op == "ICONTAINS-ALL":
            return f"arrayAll(x -> positionCaseInsensitiveUTF8({text}, x) > 0, {array})"
        if op == "STARTS-WITH-ANY":
            return f"arrayExists(x -> startsWith({text}, x), {array})"
        return f"arrayExists(x -> startsWith(lowerUTF8({text}), x), {array})"

    def cidr(self, value: ast.IpRange) -> str:
        """A validated network in the form ClickHouse expects (an address becomes a /32 or /128)."""
        try:
            return str(ipaddress.ip_network(value.text, strict=False))
        except ValueError:
            raise self.fail(
                f"'{value.text}' is not an IP address or CIDR block", value.pos,
                "write IP(10.0.0.0/8) or IP(192.0.2.7)",
            ) from None  # fmt: skip


def regex_text(value: ast.Regex) -> str:
    """The pattern as RE2 reads it, with the ``i`` flag folded in."""
    return f"(?i){value.pattern}" if value.ignore_case else value.pattern


def _plain_number(text: str) -> bool:
    # Equality treats 1e3, 1000 and 1000.0 alike, but a value with units stays text.
    try:
        float(text)
    except ValueError:
        return False
    return True


def _like_literal(text: str) -> str:
    """``text`` with LIKE's special characters escaped, to match literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
