"""Reading fields of decoded records: case-insensitive keys through the shared spellings."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hubsight.detect.base import example_event
from hubsight.detect.sigma.record import AzureRecord, FieldReader, RecordCache, Spellings
from hubsight.parsing.event import LogSet


def _record(data: dict[str, Any], shapes: Spellings) -> AzureRecord:
    event = example_event(LogSet.INGRESS_AUTHENTICATION, raw=msgspec.json.encode(data))
    return AzureRecord(event, data, shapes)


def test_the_first_spelling_wins_in_each_objects_key_order() -> None:
    # The same keys in another order are another shape: each record reads its own first key.
    shapes = Spellings()
    reader = FieldReader("properties.ipaddress")
    first = _record({"properties": {"IPAddress": "a", "ipAddress": "b"}}, shapes)
    second = _record({"properties": {"ipAddress": "b", "IPAddress": "a"}}, shapes)
    assert reader.values(first) == ["a"]
    assert reader.values(second) == ["b"]


def test_an_exact_key_is_read_before_other_spellings() -> None:
    reader = FieldReader("properties.ipAddress")
    record = _record({"properties": {"IPADDRESS": "a", "ipAddress": "b"}}, Spellings())
    assert reader.values(record) == ["b"]


def test_records_of_one_shape_read_their_own_values() -> None:
    shapes = Spellings()
    reader = FieldReader("properties.userprincipalname")
    values = [
        reader.values(_record({"properties": {"userPrincipalName": name, "id": 1}}, shapes))
        for name in ("alice", "bob")
    ]
    assert values == [["alice"], ["bob"]]
    lacking = _record({"properties": {"userPrincipalName": "c", "id": 2}}, shapes)
    assert FieldReader("properties.sessionid").values(lacking) == []


@pytest.mark.parametrize("limit", [1, 2])
def test_spellings_past_their_limit_still_read_every_shape(limit: int) -> None:
    shapes = Spellings(limit=limit)
    reader = FieldReader("properties.appid")
    data: list[dict[str, Any]] = [
        {"properties": {"AppId": "one"}},
        {"properties": {"APPID": "two", "x": 1}},
        {"properties": {"appID": "three", "y": 1, "z": 2}},
        {"properties": {"AppId": "four"}},
    ]
    assert [reader.values(_record(d, shapes)) for d in data] == [
        ["one"],
        ["two"],
        ["three"],
        ["four"],
    ]


def test_a_key_in_json_text_is_read_in_any_case() -> None:
    # Objects decoded from JSON held in strings are folded like the record's own.
    record = _record({"properties": {"details": '{"Reason": "x"}'}}, Spellings())
    assert FieldReader("properties.details.reason").values(record) == ["x"]


def test_the_cache_decodes_each_event_once_and_spells_across_events() -> None:
    cache = RecordCache()
    reader = FieldReader("properties.ipaddress")
    raw = msgspec.json.encode({"properties": {"ipAddress": "10.0.0.1"}})
    event = example_event(LogSet.INGRESS_AUTHENTICATION, raw=raw)
    other = example_event(LogSet.INGRESS_AUTHENTICATION, raw=raw, offset=1)
    record = cache.record(event)
    assert record is not None
    assert cache.record(event) is record
    again = cache.record(other)
    assert again is not None
    assert again is not record
    assert reader.values(record) == reader.values(again) == ["10.0.0.1"]
