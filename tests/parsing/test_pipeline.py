"""The message pipeline with the Azure registry: repairs counted, unparsed kept or dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hubsight.parsing.azure import build_registry
from hubsight.parsing.pipeline import MessageParser, record_category
from hubsight.sources.base import Message

from tests.parsing.samples import DATA, RECEIVED, parse_bytes

SIGNIN = (DATA / "SignInLogs" / "success-mfa-push.json").read_bytes()
UNKNOWN = b'{"time": "2025-01-01T00:00:00Z", "category": "NoSuchCategory"}'


def _parser(keep_unparsed: bool = True) -> MessageParser:
    return MessageParser(log_name="t", registry=build_registry(), keep_unparsed=keep_unparsed)


def _message(body: bytes) -> Message:
    return Message(topic="t", partition=1, offset=5, value=body, received_time=RECEIVED)


def test_repairs_are_counted_per_kind_and_listed_on_events() -> None:
    parser = _parser()
    body = json.dumps(json.loads(SIGNIN)).encode() + json.dumps(json.loads(SIGNIN)).encode()
    events = parser.parse(_message(body.replace(b'"durationMs": 0', b'"durationMs": NaN')))
    assert [e.repairs for e in events] == [["concatenated_records", "nan_infinity"]] * 2
    assert parser.counters.repairs == {"concatenated_records": 1, "nan_infinity": 1}
    assert [e.record_index for e in events] == [0, 1]


def test_drop_unparsed_counts_unclaimed_records_but_keeps_broken_ones() -> None:
    parser = _parser(keep_unparsed=False)
    body = b'{"records": [%s, %s]}' % (SIGNIN, UNKNOWN)
    events = parser.parse(_message(body))
    assert [e.log_set for e in events] == ["Ingress Authentication"]
    assert parser.counters.dropped_unparsed == 1
    assert parser.counters.unparsed_by_category == {"NoSuchCategory": 1}
    broken = parser.parse(_message(b'{"category": "SignInLogs", "time": "2025'))
    assert [e.log_set for e in broken] == ["Unparsed Data"]
    assert broken[0].parse_error is not None
    assert broken[0].parse_error.startswith("not JSON")


def test_unrepairable_text_is_kept_whole_with_both_reasons() -> None:
    events = parse_bytes(b'{"category": "SignInLogs", "x": "cut')
    assert len(events) == 1
    assert events[0]["log_set"] == "Unparsed Data"
    assert "not JSON" in events[0]["parse_error"]
    assert "unterminated string" in events[0]["parse_error"]
    assert events[0]["raw"] == '{"category": "SignInLogs", "x": "cut'


def test_the_raw_record_is_kept_byte_for_byte() -> None:
    parser = _parser()
    body = b'{"records": [%s]}' % SIGNIN.strip()
    (event,) = parser.parse(_message(body))
    assert bytes(event.raw) == SIGNIN.strip()


def test_default_domain_applies_to_users_without_one() -> None:
    record = SIGNIN.replace(b"Alice.Martin@Contoso.com", b"amartin")
    parser = MessageParser(log_name="t", registry=build_registry(), default_domain="Fabrikam.com")
    (event,) = parser.parse(_message(record))
    assert (event.user, event.account, event.account_domain) == (
        "amartin@fabrikam.com",
        "amartin",
        "fabrikam.com",
    )


@pytest.mark.parametrize(
    ("record", "category"),
    [
        (b'{"time": "x", "category": "SignInLogs", "properties": {}}', "SignInLogs"),
        (b'{"properties": {"category": "UserManagement"}, "category": "AuditLogs"}', "AuditLogs"),
        (b'{"note": "a \\"category\\": \\"Fake\\"", "category": "Real"}', "Real"),
        (b'{"note": "{", "category": "Braced"}', "Braced"),
        (b'{"Category": "Upper"}', "Upper"),
        (b'{"category": {"value": "Administrative", "localizedValue": "x"}}', "Administrative"),
        (b'{"category": "Sign\\u0049nLogs"}', "SignInLogs"),
        (b'[{"category": "InArray"}]', None),
        (b'{"time": "x"}', None),
    ],
)
def test_record_category_is_the_top_level_one(record: bytes, category: str | None) -> None:
    assert record_category(record) == category


@pytest.mark.parametrize(
    ("created", "time", "repairs"),
    [
        ("not-a-time", "2026-02-30T10:00:00Z", ["time_from_broker"]),
        ("not-a-time", "2026-02-28T10:00:00Z", None),
        ("2026-02-28T09:00:00Z", "garbage", None),
    ],
)
def test_an_unreadable_event_time_is_taken_from_the_broker_and_recorded_as_a_repair(
    created: str, time: str, repairs: list[str] | None
) -> None:
    record = json.loads(SIGNIN)
    record["time"] = time
    record["properties"]["createdDateTime"] = created
    enqueued = datetime(2026, 3, 1, 12, tzinfo=UTC)
    parser = _parser()
    (event,) = parser.parse(
        Message(
            topic="t",
            partition=0,
            offset=1,
            value=json.dumps(record).encode(),
            received_time=RECEIVED,
            enqueued_time=enqueued,
        )
    )
    assert event.log_set == "Ingress Authentication"
    assert event.repairs == repairs
    assert parser.counters.repairs == ({"time_from_broker": 1} if repairs else {})
    if repairs:
        assert event.timestamp == enqueued
    else:
        assert event.timestamp != enqueued
