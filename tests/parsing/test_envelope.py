"""Splitting Event Hub message bodies into records, and keeping what cannot be read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from hubsight.parsing.base import RecordContext, RecordParser
from hubsight.parsing.envelope import split_message
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser, raw_of, record_category
from hubsight.sources.base import Message


def test_envelope_records_keep_their_exact_bytes() -> None:
    body = b'{"records": [ {"category":"SignInLogs", "a" : 1}, {"b":[1,2]} ]}'
    pieces = split_message(body)
    assert [p.data for p in pieces] == [b'{"category":"SignInLogs", "a" : 1}', b'{"b":[1,2]}']
    assert all(p.error is None for p in pieces)


def test_bare_pretty_printed_record_is_one_record() -> None:
    body = json.dumps({"category": "Administrative", "x": {"y": 1}}, indent=2).encode()
    assert [p.data for p in split_message(body)] == [body]


def test_ndjson_and_json_array() -> None:
    assert len(split_message(b'{"a":1}\n{"a":2}\n\n{"a":3}\n')) == 3
    assert [p.data for p in split_message(b'[{"a":1},{"a":2}]')] == [b'{"a":1}', b'{"a":2}']


def test_ndjson_with_a_bad_line_keeps_the_good_ones() -> None:
    pieces = split_message(b'{"a":1}\n{"a":\n{"a":3}')
    assert [p.error is None for p in pieces] == [True, False, True]
    assert pieces[1].data == b'{"a":'


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", "empty message"), (b"   \n", "empty message"), (b'{"records": [', "not JSON")],
)
def test_unreadable_messages_have_a_reason(body: bytes, reason: str) -> None:
    (piece,) = split_message(body)
    assert piece.error is not None
    assert piece.error.startswith(reason)
    assert piece.data == body


def test_record_category_in_all_spellings() -> None:
    assert record_category(b'{"category":"SignInLogs"}') == "SignInLogs"
    assert record_category(b'{"Category":"AuditLogs"}') == "AuditLogs"
    assert record_category(b'{"category":{"value":"Administrative","localizedValue":"A"}}') == (
        "Administrative"
    )
    assert record_category(b'{"other":1}') is None
    assert record_category(b"[1]") is None


def test_raw_of_round_trips_every_input() -> None:
    assert raw_of(b' {"a": 1} ') == (msgspec.Raw(b'{"a": 1}'), False)
    text, is_b64 = raw_of(b"plain text")
    assert msgspec.json.decode(bytes(text)) == "plain text"
    assert not is_b64
    binary, is_b64 = raw_of(b"\xff\x00\xfe")
    assert is_b64
    assert msgspec.json.decode(bytes(binary)) == "/wD+"


def _message(value: bytes, offset: int = 7) -> Message:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    return Message(topic="t", partition=2, offset=offset, value=value, received_time=now)


def test_parser_positions_and_unparsed_reasons() -> None:
    parser = MessageParser(log_name="azure")
    events = parser.parse(_message(b'{"records":[{"category":"SignInLogs"},{"x":1}]}'))
    assert [(e.source_partition, e.source_offset, e.record_index) for e in events] == [
        (2, 7, 0),
        (2, 7, 1),
    ]
    assert all(e.log_set is LogSet.UNPARSED_DATA for e in events)
    assert events[0].parse_error == "no parser for category 'SignInLogs'"
    assert events[0].category == "SignInLogs"
    assert events[1].parse_error == "record has no category"
    assert parser.counters.unparsed_by_category == {"SignInLogs": 1, "(none)": 1}


def test_keep_unparsed_off_drops_only_unclaimed_records_never_broken_messages() -> None:
    parser = MessageParser(log_name="azure", keep_unparsed=False)
    assert parser.parse(_message(b'{"category":"Unknown"}')) == []
    broken = parser.parse(_message(b"\xff\x01garbage"))
    assert len(broken) == 1
    assert broken[0].raw_base64 is True
    assert parser.counters.dropped_unparsed == 1


class _Exploding:
    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        raise KeyError("properties")


class _Registry:
    def parser_for(self, category: str | None, record: bytes) -> RecordParser | None:
        return _Exploding()


def test_a_failing_parser_yields_unparsed_with_its_reason() -> None:
    parser = MessageParser(log_name="azure", registry=_Registry())
    (event,) = parser.parse(_message(b'{"category":"SignInLogs"}'))
    assert event.log_set is LogSet.UNPARSED_DATA
    assert event.parse_error == "parser failed: 'properties'"


def test_a_file_of_messages_one_per_line_yields_their_records() -> None:
    body = b'{"records": [{"a": 1}, {"a": 2}]}\n{"records": [{"a": 3}]}\n{"a": 4}\n'
    assert [p.data for p in split_message(body)] == [
        b'{"a": 1}',
        b'{"a": 2}',
        b'{"a": 3}',
        b'{"a": 4}',
    ]
