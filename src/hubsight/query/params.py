"""Query parameters: every value from a user reaches ClickHouse as a typed ``{pN:Type}``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

ParamValue = str | int | float | bool | datetime | Sequence[str] | Sequence[float]


class Params:
    """The parameters of one statement; equal values of one type share a name."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, ParamValue]] = {}
        self._names: dict[tuple[str, str], str] = {}

    def add(self, sql_type: str, value: ParamValue, name: str | None = None) -> str:
        """Register ``value`` and return its placeholder, e.g. ``{p0:String}``."""
        identity = (sql_type, repr(value))
        if name is None:
            name = self._names.get(identity) or f"p{len(self._names)}"
            self._names[identity] = name
        self.values[name] = (sql_type, value)
        return f"{{{name}:{sql_type}}}"


def _escape(text: str) -> str:
    # ClickHouse reads parameter values in its escaped text format.
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(value: ParamValue) -> str:
    """A parameter value in the text form ClickHouse parses for its declared type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # isoformat, not strftime: it writes year 1 as 0001, which ClickHouse can read.
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "milliseconds")
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, int | float):
        return repr(value)
    # An array is read as a literal of quoted items, without the escaped format's unescaping
    # first (escaping it again would double every backslash and break on a quote).
    items = [_quote(v) if isinstance(v, str) else repr(v) for v in value]
    return "[" + ", ".join(items) + "]"


def bind(values: dict[str, tuple[str, ParamValue]]) -> dict[str, str]:
    """Every parameter rendered for the store's ``select``."""
    return {name: render(value) for name, (_, value) in values.items()}
