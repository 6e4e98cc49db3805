"""The parsers understand everything the simulator sends in a category hubsight claims."""

from __future__ import annotations

from collections import Counter

from hubsight.parsing.azure import build_registry
from hubsight.parsing.event import LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.simulate import BROKEN
from hubsight.sources.base import Message

from .runs import Run


def test_only_broken_records_are_unparsed(day: Run) -> None:
    parser = MessageParser(log_name="simulated", registry=build_registry())
    unparsed: Counter[str] = Counter()
    log_sets: Counter[LogSet] = Counter()
    for message in day.messages:
        value = Message(
            topic="simulated",
            partition=0,
            offset=message.sequence,
            value=message.body,
            received_time=message.enqueued_time,
            enqueued_time=message.enqueued_time,
        )
        for event in parser.parse(value):
            log_sets[event.log_set] += 1
            if event.log_set is LogSet.UNPARSED_DATA:
                unparsed[message.category] += 1
    assert set(unparsed) == set(BROKEN)
    assert set(log_sets) == set(LogSet)


def test_sign_ins_normalize_to_who_where_and_how(day: Run) -> None:
    brute = next(t for t in day.truth if t["scenario"] == "brute-force")
    ref = brute["records"][0]
    message = day.messages[ref["message"]]
    parser = MessageParser(log_name="simulated", registry=build_registry())
    value = Message(
        topic="t", partition=0, offset=0, value=message.body, received_time=message.enqueued_time
    )
    event = parser.parse(value)[ref["index"]]
    assert event.user == brute["user"]
    assert event.source_ip == brute["source_ips"][0]
    assert event.result in ("FAILED_BAD_PASSWORD", "SUCCESS")
    assert event.geoip_country_code not in (None, "DE")
