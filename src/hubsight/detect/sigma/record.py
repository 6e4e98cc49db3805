"""The raw Azure record as Sigma predicates read it: decoded once per event, looked up by path.

Lookups are case-insensitive (Azure spells the same key differently across categories and API
versions), walk into lists (``TargetResources.modifiedProperties.newValue`` reads every target's
every modified property) and into JSON held in strings (``properties`` is often one). A value
that is itself a list yields its elements and the list; objects and lists compare as their
compact JSON text, as Log Analytics compares a dynamic column with a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from hubsight.detect.sigma.fields import PROPERTIES, VIRTUAL_PREFIX
from hubsight.parsing.event import Event

Getter = Callable[["AzureRecord"], list[Any]]
_MISSING = object()


class AzureRecord:
    """One event's decoded record, with its normalized event for derived fields."""

    __slots__ = ("_lower", "_raw", "data", "event")

    def __init__(self, event: Event, data: dict[str, Any]) -> None:
        self.event = event
        self.data = data
        self._raw: str | None = None
        self._lower: str | None = None

    def raw_text(self) -> str:
        """The record's JSON text, for keyword regular expressions."""
        if self._raw is None:
            self._raw = bytes(self.event.raw).decode("utf-8", "replace")
        return self._raw

    def text(self) -> str:
        """The record's JSON text in lower case, for keyword searches."""
        if self._lower is None:
            self._lower = self.raw_text().lower()
        return self._lower


class RecordCache:
    """The record of the event being evaluated, decoded once for all Sigma rules of a load."""

    __slots__ = ("_event", "_record")

    def __init__(self) -> None:
        self._event: Event | None = None
        self._record: AzureRecord | None = None

    def record(self, event: Event) -> AzureRecord | None:
        """The decoded record of ``event`` (None when it is not a JSON object)."""
        if event is not self._event:
            self._event = event
            self._record = _decode(event)
        return self._record


def _decode(event: Event) -> AzureRecord | None:
    if event.raw_base64:
        return None
    try:
        data = msgspec.json.decode(event.raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(data, dict):
        return None
    properties = data.get(PROPERTIES)
    if isinstance(properties, str):
        data[PROPERTIES] = _json_in_string(properties, properties)
    return AzureRecord(event, data)


def getter(path: str) -> Getter:
    """The values at ``path`` (dotted, or a ``hubsight:`` derived field) of a record."""
    if path.startswith(VIRTUAL_PREFIX):
        # Only the field tables produce these names, so every one of them is in _DERIVED.
        return _DERIVED[path[len(VIRTUAL_PREFIX) :]]
    keys = tuple((key, key.lower()) for key in path.split("."))

    def values(record: AzureRecord) -> list[Any]:
        out: list[Any] = []
        _walk(record.data, keys, 0, out)
        return out

    return values


def _walk(node: Any, keys: tuple[tuple[str, str], ...], depth: int, out: list[Any]) -> None:
    if depth == len(keys):
        if isinstance(node, list):
            for item in node:
                _walk(item, keys, depth, out)
        out.append(node)
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, keys, depth, out)
        return
    if isinstance(node, str):
        node = _json_in_string(node, None)
    if not isinstance(node, dict):
        return
    exact, lower = keys[depth]
    child = node.get(exact, _MISSING)
    if child is _MISSING:
        child = next((v for k, v in node.items() if k.lower() == lower), _MISSING)
        if child is _MISSING:
            return
    _walk(child, keys, depth + 1, out)


def _json_in_string(text: str, default: Any) -> Any:
    if text[:1] not in ("{", "["):
        return default
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return default


def _status(record: AzureRecord) -> list[Any]:
    result = record.event.result
    if result is None:
        return []
    return ["Success" if result == "SUCCESS" else "Failure"]


def _resource_provider(record: AzureRecord) -> list[Any]:
    operation = record.data.get("operationName")
    if isinstance(operation, dict):  # the REST shape: {"value": ..., "localizedValue": ...}
        operation = operation.get("value")
    if not isinstance(operation, str) or "/" not in operation:
        return []
    return [operation.partition("/")[0]]


def _user(record: AzureRecord) -> list[Any]:
    return [] if record.event.user is None else [record.event.user]


_DERIVED: dict[str, Getter] = {
    "status": _status,
    "resource_provider": _resource_provider,
    "user": _user,
}


def text_of(value: Any) -> str | None:
    """``value`` as text for string comparisons (None for a null)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return msgspec.json.encode(value).decode()


def number_of(value: Any) -> float | None:
    """``value`` as a number (None when it is not one; booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
