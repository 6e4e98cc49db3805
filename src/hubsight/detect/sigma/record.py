"""The raw Azure record as Sigma predicates read it: decoded once per event, looked up by path.

Bare Graph-shaped audit entries get the Event Hub envelope, and the REST shape's
``{value, localizedValue}`` wrappers are unwrapped, so one field table serves every shape.
Lookups are case-insensitive (Azure spells the same key differently across categories and API
versions), walk into lists (``TargetResources.modifiedProperties.newValue`` reads every target's
every modified property) and into JSON held in strings (``properties`` is often one); a step
also names the key of a ``{"key", "value"}`` pair (``additionalDetails.User-Agent``). A value
that is itself a list yields its elements and the list; objects and lists compare as their
compact JSON text, as Log Analytics compares a dynamic column with a string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec

from hubsight.detect.sigma.fields import MODIFIED, PROPERTIES, VIRTUAL_PREFIX
from hubsight.parsing.azure.audit import AUDIT_CATEGORY
from hubsight.parsing.azure.kubernetes import KUBE_CATEGORIES
from hubsight.parsing.event import Event

Derived = Callable[["AzureRecord"], list[Any]]
_MISSING = object()
_GRAPH_ACTIVITY = "activityDisplayName"
_LOCALIZED, _VALUE = "localizedValue", "value"
_KUBE_LOG = "log"
# Shapes of objects whose key spellings ``Spellings`` keeps; past this many it starts afresh.
_MAX_SHAPES = 4096


class AzureRecord:
    """One event's decoded record, with its normalized event for derived fields."""

    __slots__ = ("_folded", "_lower", "_raw", "_shapes", "data", "event", "memo")

    def __init__(self, event: Event, data: dict[str, Any], shapes: Spellings) -> None:
        self.event = event
        self.data = data
        # Values by field, filled as rules read them: many rules read the same few fields.
        self.memo: dict[str, list[Any]] = {}
        # Objects whose keys a lookup had to match case-insensitively, by id: the object (which
        # keeps its id from being reused) and its keys by their lower-case spelling. Rules read
        # many fields a record lacks, and each miss needs the object's spellings.
        self._folded: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
        self._shapes = shapes
        self._raw: str | None = None
        self._lower: str | None = None

    def spellings(self, node: dict[str, Any]) -> dict[str, str]:
        """The keys of ``node`` (an object of this record) by their lower-case spelling."""
        known = self._folded.get(id(node))
        if known is None:
            known = self._folded[id(node)] = (node, self._shapes.of(node))
        return known[1]

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


class Spellings:
    """Per shape of object (its keys, in order), its keys by their lower-case spelling.

    Records of a category come in a few shapes: matching a key case-insensitively then costs a
    look-up of the shape instead of lowering every key of every record (a sign-in's
    ``properties`` has sixty). Only a cache, of what the keys alone decide.
    """

    __slots__ = ("_limit", "_shapes")

    def __init__(self, limit: int = _MAX_SHAPES) -> None:
        self._shapes: dict[tuple[str, ...], dict[str, str]] = {}
        self._limit = limit

    def of(self, node: dict[str, Any]) -> dict[str, str]:
        """``node``'s keys by their lower-case spelling; the first of each spelling wins."""
        shape = tuple(node)
        known = self._shapes.get(shape)
        if known is None:
            if len(self._shapes) >= self._limit:
                self._shapes.clear()
            # Reversed, so that the first key of each spelling is the one kept, as a scan of
            # the keys in order would find it.
            known = self._shapes[shape] = {key.lower(): key for key in reversed(shape)}
        return known


class RecordCache(threading.local):
    """The record of the event being evaluated, decoded once for every Sigma rule.

    One per process (``RECORDS``): each family of shipped rules and the imported rules are
    loaded by loaders of their own, and with a cache per loader a sign-in was decoded once per
    family. It holds only the current event's record, so sharing it changes no result. Per
    thread: the live engine and a backtest may run the same rules at once.
    """

    def __init__(self) -> None:
        self._event: Event | None = None
        self._record: AzureRecord | None = None
        self._shapes = Spellings()

    def record(self, event: Event) -> AzureRecord | None:
        """The decoded record of ``event`` (None when it is not a JSON object)."""
        if event is not self._event:
            self._event = event
            self._record = _decode(event, self._shapes)
        return self._record


RECORDS = RecordCache()


def _decode(event: Event, shapes: Spellings) -> AzureRecord | None:
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
    elif properties is None and event.category == AUDIT_CATEGORY and _GRAPH_ACTIVITY in data:
        # A bare Graph-shaped audit entry: give it the Event Hub envelope the fields expect.
        data = {
            "operationName": data[_GRAPH_ACTIVITY],
            "category": AUDIT_CATEGORY,
            PROPERTIES: data,
        }
    properties = data.get(PROPERTIES)
    if event.category in KUBE_CATEGORIES and isinstance(properties, dict):
        # The audit event is JSON text that every kube-audit rule reads: decode it once, not
        # once per field.
        log = properties.get(_KUBE_LOG)
        if isinstance(log, str):
            properties[_KUBE_LOG] = _json_in_string(log.strip(), log)
    for key, value in data.items():
        # The REST shape of Activity Log records wraps values as {value, localizedValue}. (A
        # decoded record holds plain dicts only: the type test is the cheaper isinstance.)
        if type(value) is dict and _LOCALIZED in value and _VALUE in value:
            data[key] = value[_VALUE]
    return AzureRecord(event, data, shapes)


class FieldReader:
    """Reads one field (a dotted path, or a ``hubsight:`` derived field) of records."""

    __slots__ = ("_derived", "_keys", "lowered_key", "number_key", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        # Where ``lowered`` and ``numbers`` keep their answers in a record's memo
        # (``sigma.matcher`` too).
        self.lowered_key = path + "\0lower"
        self.number_key = path + "\0number"
        self._derived = (
            _derived(path[len(VIRTUAL_PREFIX) :]) if path.startswith(VIRTUAL_PREFIX) else None
        )
        self._keys = tuple((key, key.lower()) for key in path.split("."))

    @property
    def derived(self) -> Derived | None:
        """How a ``hubsight:`` field is derived from the record (None for a path)."""
        return self._derived

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The keys of the path as spelled, top first (None for a derived field)."""
        return None if self._derived is not None else tuple(exact for exact, _ in self._keys)

    def values(self, record: AzureRecord) -> list[Any]:
        """The field's values in ``record`` (empty when absent)."""
        found = record.memo.get(self.path)
        if found is None:
            found = record.memo[self.path] = self._read(record)
        return found

    def _read(self, record: AzureRecord) -> list[Any]:
        if self._derived is not None:
            return self._derived(record)
        return _lookup(record, self._keys)

    def lowered(self, record: AzureRecord) -> list[str]:
        """The field's non-null values as lower-case text."""
        memo = record.memo
        found = memo.get(self.lowered_key)
        if found is None:
            # ``values`` written out: a dozen rules read a sign-in's fields, mostly this way.
            values = memo.get(self.path)
            if values is None:
                values = memo[self.path] = self._read(record)
            if len(values) == 1 and type(values[0]) is str:
                found = [values[0].lower()]  # the commonest case, without the general one's cost
            else:
                found = [t.lower() for t in map(text_of, values) if t is not None]
            memo[self.lowered_key] = found
        return found

    def numbers(self, record: AzureRecord) -> list[Any]:
        """The field's values that are numbers or numeric text, as numbers."""
        found = record.memo.get(self.number_key)
        if found is None:
            found = [n for n in map(number_of, self.values(record)) if n is not None]
            record.memo[self.number_key] = found
        return found


Keys = tuple[tuple[str, str], ...]


def _lookup(record: AzureRecord, keys: Keys) -> list[Any]:
    # Straight down through objects, the common case; lists and JSON strings take _walk.
    node: Any = record.data
    for depth, (exact, lower) in enumerate(keys):
        if type(node) is not dict:
            out: list[Any] = []
            _walk(node, keys, depth, out, record)
            return out
        child = node.get(exact, _MISSING)
        if child is _MISSING:
            child = _child(node, exact, lower, record)
            if child is _MISSING:
                return []
        node = child
    if isinstance(node, list):
        out = []
        _walk(node, keys, len(keys), out, record)
        return out
    return [node]


def _walk(node: Any, keys: Keys, depth: int, out: list[Any], record: AzureRecord) -> None:
    if depth == len(keys):
        if isinstance(node, list):
            for item in node:
                _walk(item, keys, depth, out, record)
        out.append(node)
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, keys, depth, out, record)
        return
    if isinstance(node, str):
        node = _json_in_string(node, None)
    if not isinstance(node, dict):
        return
    exact, lower = keys[depth]
    child = _child(node, exact, lower, record)
    if child is not _MISSING:
        _walk(child, keys, depth + 1, out, record)


def _child(node: dict[str, Any], exact: str, lower: str, record: AzureRecord) -> Any:
    child = node.get(exact, _MISSING)
    if child is _MISSING:
        spelled = record.spellings(node).get(lower)
        if spelled is not None:
            child = node[spelled]
    if child is _MISSING:
        # Entra ID lists details as {"key": ..., "value": ...} pairs (additionalDetails,
        # authenticationProcessingDetails): a path step names the pair's key.
        key = node.get("key")
        if isinstance(key, str) and key.lower() == lower:
            child = node.get("value", _MISSING)
    return child


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


# Graph's authenticationProtocol values as the portal shows them.
_PROTOCOL_LABELS = {
    "devicecode": "Device Code",
    "ropc": "ROPC",
    "oauth2": "OAuth2",
    "saml20": "SAML 2.0",
    "wsfederation": "WS-Federation",
    "none": "None",
}


_PROTOCOL = (("properties", "properties"), ("authenticationProtocol", "authenticationprotocol"))


def _protocol_label(record: AzureRecord) -> list[Any]:
    protocols = _lookup(record, _PROTOCOL)
    return [_PROTOCOL_LABELS.get(p.lower(), p) for p in protocols if isinstance(p, str)]


def _sign_ins(record: AzureRecord) -> list[Any]:
    return ["Sign-ins"]


_MODIFIED_PATH = tuple(
    (key, key.lower()) for key in ("properties", "targetResources", "modifiedProperties")
)

_DERIVED: dict[str, Derived] = {
    "status": _status,
    "resource_provider": _resource_provider,
    "user": _user,
    "protocol_label": _protocol_label,
    "sign_ins": _sign_ins,
}


def _derived(name: str) -> Derived:
    # Only the field tables produce hubsight: names, so each is in _DERIVED or is modified:<x>.
    if name.startswith(MODIFIED):
        return _modified(name[len(MODIFIED) :].lower())
    return _DERIVED[name]


def _modified(display_name: str) -> Derived:
    def read(record: AzureRecord) -> list[Any]:
        out: list[Any] = []
        for item in _lookup(record, _MODIFIED_PATH):
            if not isinstance(item, dict):
                continue
            name = next((v for k, v in item.items() if k.lower() == "displayname"), None)
            if not isinstance(name, str) or name.lower() != display_name:
                continue
            value = next((v for k, v in item.items() if k.lower() == "newvalue"), None)
            # Entra ID writes the new value as JSON text: "\"False\"" or "[\"a\",\"b\"]".
            decoded = _json_value(value) if isinstance(value, str) else value
            out.extend(decoded if isinstance(decoded, list) else [decoded])
        return out

    return read


def _json_value(text: str) -> Any:
    if text[:1] not in ('"', "["):
        return text
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


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
