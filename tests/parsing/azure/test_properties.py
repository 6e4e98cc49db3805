"""Property-based: whatever arrives yields events or Unparsed Data with a reason, never a crash."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hubsight.parsing.azure import build_registry
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.sources.base import Message

from tests.parsing.samples import RECEIVED, sample_files

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
JSON_VALUES = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _records() -> list[dict[str, Any]]:
    found = []
    for path in sample_files():
        data = path.read_bytes()
        if path.parent.name == "messages" or not _is_json(data):
            continue
        value = json.loads(data)
        if isinstance(value, dict) and "records" not in value:
            found.append(value)
    return found


SAMPLE_RECORDS = _records()


def _parse(body: bytes) -> list[Event]:
    parser = MessageParser(log_name="p", registry=build_registry(), default_domain="contoso.com")
    message = Message(topic="t", partition=0, offset=0, value=body, received_time=RECEIVED)
    return parser.parse(message)


def _assert_accounted_for(events: list[Event], *, may_be_empty: bool = False) -> None:
    assert events or may_be_empty, "a message with records yields at least one event"
    for event in events:
        assert isinstance(event.log_set, LogSet)
        assert event.timestamp.tzinfo is not None
        if event.log_set is LogSet.UNPARSED_DATA:
            assert event.parse_error
        blank = [f.name for f in msgspec.structs.fields(event) if getattr(event, f.name) == ""]
        assert blank == [], "an empty string is an absent value"
        msgspec.json.decode(msgspec.json.encode(event))  # storable and readable back


@SETTINGS
@given(JSON_VALUES)
def test_any_json_value(value: object) -> None:
    events = _parse(msgspec.json.encode(value))
    # One event per record: a batch's records, an array's items, or the value itself.
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        expected = len(value["records"])
    elif isinstance(value, list):
        expected = len(value)
    else:
        expected = 1
    assert len(events) == expected
    _assert_accounted_for(events, may_be_empty=expected == 0)


@SETTINGS
@given(st.binary(min_size=0, max_size=300))
@example(b" [ ] ")
@example(b'{"records": []}')
@example(b"[1]")
def test_any_byte_string(body: bytes) -> None:
    _assert_accounted_for(_parse(body), may_be_empty=_holds_no_records(body))


def _holds_no_records(body: bytes) -> bool:
    """Whether ``body`` is an empty array or an envelope of no records (random bytes make
    ``[]`` now and then): a message with nothing in it yields nothing."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return False
    return value == [] or (isinstance(value, dict) and value.get("records") == [])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append((*prefix, key))
            paths.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.append((*prefix, index))
            paths.extend(_paths(child, (*prefix, index)))
    return paths


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(SAMPLE_RECORDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(record)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = record
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return record


@SETTINGS
@given(mutated_records())
def test_records_with_fields_removed_or_retyped(record: dict[str, Any]) -> None:
    events = _parse(msgspec.json.encode(record))
    assert len(events) == 1
    _assert_accounted_for(events)


def test_there_are_sample_records_to_mutate() -> None:
    assert len(SAMPLE_RECORDS) >= 40
