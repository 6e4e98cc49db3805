"""Poison records: whatever a record makes a decoder or parser do, that record ends in Unparsed
Data with its reason and the records beside it are parsed as usual."""

from __future__ import annotations

import json

import msgspec
import pytest

from hubsight.parsing.azure import build_registry
from hubsight.parsing.envelope import split_message
from hubsight.parsing.pipeline import MessageParser
from hubsight.sources.base import Message

from tests.parsing.samples import DATA, RECEIVED

SIGNIN = (DATA / "SignInLogs" / "success-mfa-push.json").read_bytes().strip()
DEEP = b'{"category": "SignInLogs", "properties": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000


def _parse(body: bytes) -> list[dict[str, object]]:
    parser = MessageParser(log_name="t", registry=build_registry())
    events = parser.parse(
        Message(topic="t", partition=0, offset=9, value=body, received_time=RECEIVED)
    )
    return [
        {
            "log_set": str(e.log_set),
            "parse_error": e.parse_error,
            "index": e.record_index,
            "raw": msgspec.json.decode(bytes(e.raw)),
        }
        for e in events
    ]


def _signin_ok(event: dict[str, object]) -> bool:
    return event["log_set"] == "Ingress Authentication" and event["parse_error"] is None


def test_a_record_nested_10000_deep_in_an_envelope_leaves_its_neighbours_parsed() -> None:
    events = _parse(b'{"records": [%s, %s, %s]}' % (SIGNIN, DEEP, SIGNIN))
    assert [e["index"] for e in events] == [0, 1, 2]
    assert _signin_ok(events[0])
    assert _signin_ok(events[2])
    assert events[1]["log_set"] == "Unparsed Data"
    assert events[1]["parse_error"] == "parser failed: nested too deeply to read"
    # Too deep to store as a JSON object: kept as the text of the record, byte for byte.
    assert events[1]["raw"] == DEEP.decode()


@pytest.mark.parametrize(
    ("body", "reasons"),
    [
        # A top-level array of records.
        (b"[%s, %s]" % (DEEP_ARRAY, SIGNIN), ["record has no category", None]),
        # Newline-delimited records.
        (
            SIGNIN.replace(b"\n", b" ") + b"\n" + DEEP,
            [None, "parser failed: nested too deeply to read"],
        ),
        # Deep and not even closed: no category can be read.
        (b'{"records": [%s, %s]}' % (SIGNIN, b'{"a": ' * 10_000), None),
        # One record alone.
        (DEEP, ["parser failed: nested too deeply to read"]),
        (b'{"b": ' * 10_000 + b"1" + b"}" * 10_000, ["nested too deeply to read"]),
    ],
    ids=["array", "ndjson", "unclosed", "alone", "alone-without-category"],
)
def test_deep_records_in_every_message_shape(body: bytes, reasons: list[str | None] | None) -> None:
    events = _parse(body)
    if reasons is None:
        # The envelope never closes: the message is kept whole, as one unparsed record.
        assert len(events) == 1
        assert events[0]["log_set"] == "Unparsed Data"
        assert events[0]["raw"] == body.decode()
        return
    assert [e["parse_error"] for e in events] == reasons
    assert all(_signin_ok(e) for e, reason in zip(events, reasons, strict=True) if reason is None)


def test_the_scan_of_a_deep_envelope_respects_strings_and_escapes() -> None:
    tricky = json.dumps({"category": "X", "s": 'a "quoted" ], [ {} \\', "t": "\\"}).encode()
    body = b'{"records": [%s, %s, {"n": [1, {"m": "]"}]}]}' % (tricky, DEEP_ARRAY)
    pieces = split_message(body)
    assert [p.data for p in pieces] == [tricky, DEEP_ARRAY, b'{"n": [1, {"m": "]"}]}']
    assert all(p.error is None for p in pieces)
    # Without the deep record the decoder splits the same way.
    normal = split_message(body.replace(DEEP_ARRAY, b"[]"))
    assert [p.data for p in normal] == [tricky, b"[]", b'{"n": [1, {"m": "]"}]}']


def test_a_record_just_shallow_enough_is_parsed_as_json() -> None:
    shallow = b'{"category": "Custom", "p": ' + b"[" * 400 + b"]" * 400 + b"}"
    (event,) = _parse(shallow)
    assert event["parse_error"] == "no parser for category 'Custom'"
    assert isinstance(event["raw"], dict)
