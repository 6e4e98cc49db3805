"""A shipped rule's examples: Event Hub records built from a few real-shaped base records.

``<rule>.examples.json`` beside a rule names a base record (``records/<name>.json``) and lists
the records the rule must fire on (``fires``) and must stay quiet on (``quiet``)::

    {"record": "administrative",
     "fires": [{"name": "vault deleted", "operation": "Microsoft.KeyVault/vaults/delete"}],
     "quiet": [{"name": "deletion started", "operation": "...", "stage": "Start",
                "set": {"properties.statusCode": null}}]}

A base record is ``{"vars": {...}, "record": {...}}``: a complete record as Azure sends it in
which a string that is exactly ``"{name}"`` stands for the variable ``name``. An example sets
variables by name (any JSON value) and may ``set`` further values by dotted path (list items by
number; null removes the key); ``"severity": "low"`` says what each alert it raises must be,
``"alerts": 2`` how many it raises where more than whether matters. A
base record's ``"json_text"`` lists paths that Azure sends as JSON text (AKS's
``properties.log``): they are written as objects, so examples can ``set`` inside them, and
encoded last. ``records`` lists several such records for rules that need more
than one event; a record there may name another base record (``"record": "signin"``), to
which the example's own variables then do not apply. Each record is sent as Event Hubs sends
it (``{"records": [...]}``) through the real parser, so an example is exactly what the
collector would store.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubsight.detect.base import Example, Severity
from hubsight.errors import RuleError
from hubsight.parsing.azure import build_registry
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.sources.base import Message

RECORDS_DIR = Path(__file__).parent / "records"
EXAMPLES_SUFFIX = ".examples.json"
_VERDICTS = (("fires", True), ("quiet", False))
_RESERVED = frozenset({"name", "set", "records", "record", "severity", "alerts"})
_RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BaseRecord:
    """A record with variables, and the variables' defaults."""

    name: str
    defaults: dict[str, Any]
    record: dict[str, Any]
    json_text: tuple[str, ...] = ()


def examples_path(rule_path: Path) -> Path:
    """Where the examples of the rule in ``rule_path`` are."""
    return rule_path.with_name(rule_path.stem + EXAMPLES_SUFFIX)


def load_base(name: str) -> BaseRecord:
    """The base record ``records/<name>.json``."""
    path = RECORDS_DIR / f"{name}.json"
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RuleError(
            f"base record {name!r} cannot be read: {exc}",
            hint=f"base records are the JSON files in {RECORDS_DIR}",
        ) from exc
    return BaseRecord(name, dict(doc["vars"]), doc["record"], tuple(doc.get("json_text", ())))


def load_examples(path: Path) -> list[Example]:
    """The examples in ``path``, each record parsed as the collector would parse it."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RuleError(
            f"{path}: the rule's examples cannot be read: {exc}",
            hint="every shipped rule has a <rule>.examples.json beside it",
        ) from exc
    base = load_base(doc["record"])
    others: dict[str, BaseRecord] = {}
    parser = MessageParser(log_name="example", registry=build_registry())
    out: list[Example] = []
    offset = 0
    for key, fires in _VERDICTS:
        for spec in doc.get(key, ()):
            name = spec.get("name") or f"{key} {len(out) + 1}"
            events: list[Event] = []
            for part in spec.get("records", [spec]):
                other = part.get("record") if "records" in spec else None
                if other is None:
                    record = compose(base, {**_shared(spec), **part})
                else:
                    if other not in others:
                        others[other] = load_base(other)
                    record = compose(others[other], part)
                events.append(_parse(parser, record, offset, path, name))
                offset += 1
            alerts = spec.get("alerts")
            if alerts is not None and (type(alerts) is not int or alerts < 0):
                raise RuleError(
                    f"{path}: example {name!r} expects {alerts!r} alerts",
                    hint='"alerts" is how many alerts it raises: a whole number, 0 or more',
                )
            severity = _severity(spec, path, name)
            out.append(Example(name, events, fires, alerts=alerts, severity=severity))
    return out


def _severity(spec: dict[str, Any], path: Path, name: str) -> Severity | None:
    """The severity an example's alerts must have (``"severity": "low"``), when it names one."""
    value = spec.get("severity")
    if value is None:
        return None
    by_name = {s.value.lower(): s for s in Severity}
    if not isinstance(value, str) or value.lower() not in by_name:
        raise RuleError(
            f"{path}: example {name!r} names severity {value!r}, which is none of hubsight's",
            hint=f"one of: {', '.join(by_name)}",
        )
    return by_name[value.lower()]


def _shared(spec: dict[str, Any]) -> dict[str, Any]:
    # With ``records``, the example's own variables apply to every record it lists.
    return {k: v for k, v in spec.items() if k not in _RESERVED} if "records" in spec else {}


def compose(base: BaseRecord, spec: dict[str, Any]) -> dict[str, Any]:
    """The base record with the example's variables and ``set`` paths applied."""
    values = dict(base.defaults)
    for key, value in spec.items():
        if key in _RESERVED:
            continue
        if key not in values:
            raise RuleError(
                f"example variable {key!r} is not one of base record {base.name!r}'s",
                hint=f'its variables: {", ".join(sorted(values))}; use "set" for other paths',
            )
        values[key] = value
    record: dict[str, Any] = _substitute(base.record, values)
    for dotted, value in spec.get("set", {}).items():
        _set_path(record, dotted.split("."), value)
    for dotted in base.json_text:
        *parents, last = dotted.split(".")
        node: Any = record
        for key in parents:
            node = node[key]
        node[last] = json.dumps(node[last])
    return record


def _substitute(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    if isinstance(node, str) and len(node) > 2 and node[0] == "{" and node[-1] == "}":
        return copy.deepcopy(values[node[1:-1]]) if node[1:-1] in values else node
    return node


def _set_path(node: Any, keys: list[str], value: Any) -> None:
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if isinstance(node, list):
            index = int(key)
            if last:
                node[index] = value
                return
            node = node[index]
            continue
        if last:
            if value is None:
                node.pop(key, None)
            else:
                node[key] = value
            return
        node = node.setdefault(key, {})


def _parse(
    parser: MessageParser, record: dict[str, Any], offset: int, path: Path, name: str
) -> Event:
    message = Message(
        topic="example",
        partition=0,
        offset=offset,
        value=json.dumps({"records": [record]}).encode(),
        received_time=_RECEIVED,
    )
    events = parser.parse(message)
    if len(events) != 1 or events[0].log_set is LogSet.UNPARSED_DATA:
        reason = events[0].parse_error if events else "no event"
        raise RuleError(
            f"{path}: example {name!r} is not a record the parser accepts: {reason}",
            hint="build examples from the base records in detect/content/records",
        )
    return events[0]
