"""Everything produced is stored exactly once, bad messages included (real broker, real store)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker

from tests.support import kafka_source, produce, serving, stored_count, wait_until

pytestmark = pytest.mark.integration


def _bodies(messages: int, per_message: int, start: int = 0) -> list[bytes]:
    bodies = []
    for m in range(messages):
        records = [
            {"category": "SignInLogs", "seq": start + m * per_message + i, "pad": "x" * 120}
            for i in range(per_message)
        ]
        bodies.append(json.dumps({"records": records}).encode())
    return bodies


def test_200k_records_in_4000_messages_over_4_partitions_stored_once(
    broker: LocalBroker, topic: str, data_dir: Path
) -> None:
    produced = produce(broker.bootstrap, topic, _bodies(4_000, 50), partitions=4)
    assert produced == 4_000
    with serving(data_dir, kafka_source("azure", broker.bootstrap, topic)) as service:
        wait_until(lambda: stored_count(service, "azure") >= 200_000, 120, "200,000 events")
        wait_until(
            lambda: (
                all(p["lag"] == 0 for p in service.health["azure"].snapshot()["lag"])
                and len(service.health["azure"].snapshot()["lag"]) == 4
            ),
            30,
            "every partition committed",
        )
        (row,) = service.store.select(
            "SELECT count() AS n, uniqExact(JSONExtractInt(raw, 'seq')) AS seqs, "
            "min(JSONExtractInt(raw, 'seq')) AS lo, max(JSONExtractInt(raw, 'seq')) AS hi, "
            "uniqExact(source_partition) AS partitions, "
            "uniqExact(source_partition, source_offset, record_index) AS positions "
            "FROM events WHERE log_name = 'azure'"
        )
        assert row == {
            "n": 200_000,
            "seqs": 200_000,
            "lo": 0,
            "hi": 199_999,
            "partitions": 4,
            "positions": 200_000,
        }
        snapshot = service.health["azure"].snapshot()
        assert snapshot["state"] == "running"
        assert snapshot["events_stored"] == 200_000
        assert snapshot["unparsed_by_category"] == {"SignInLogs": 200_000}


def _malformed(rng: random.Random) -> list[tuple[bytes, str]]:
    """1,000 bad messages, each of which yields exactly one event, with the reason expected."""
    no_newline = bytes(b for b in range(256) if b != 0x0A)
    kinds: list[tuple[bytes, str]] = []
    for i in range(1_000):
        kind = i % 8
        if kind == 0:
            body = json.dumps({"records": [{"category": "SignInLogs", "i": i}]}).encode()[:-7]
            kinds.append((body, "not JSON"))
        elif kind == 1:
            kinds.append((bytes(rng.choice(no_newline) for _ in range(64)) + b"\xff", "not JSON"))
        elif kind == 2:
            kinds.append((b"", "empty message"))
        elif kind == 3 and i < 20:
            kinds.append((os.urandom(1_000_000).replace(b"\n", b"."), "not JSON"))
        elif kind == 3:
            kinds.append((b'{"category": "SignInLogs", "x": [1, 2}', "not JSON"))
        elif kind == 4:
            kinds.append((b'{"records": 5}', "record has no category"))
        elif kind == 5:
            kinds.append((b'{"category": 17, "time": []}', "record has no category"))
        elif kind == 6:
            kinds.append((b'"a lonely string"', "record has no category"))
        else:
            # Repaired into JSON (Azure sends such pseudo-JSON), then unclaimed.
            kinds.append((b"{'single': 'quotes'}", "record has no category"))
    return kinds


def test_malformed_messages_land_in_unparsed_data_and_valid_ones_around_them_are_kept(
    broker: LocalBroker, topic: str, data_dir: Path
) -> None:
    rng = random.Random(7)
    bad = _malformed(rng)
    good = _bodies(2_000, 10)
    stream: list[bytes] = []
    for index, body in enumerate(good):
        stream.append(body)
        if index % 2 == 0:
            stream.append(bad[index // 2][0])
    assert len(stream) == 3_000
    produce(broker.bootstrap, topic, stream, partitions=4)
    with serving(data_dir, kafka_source("azure", broker.bootstrap, topic)) as service:
        wait_until(lambda: stored_count(service, "azure") >= 21_000, 120, "21,000 events")
        rows = service.store.select(
            "SELECT parse_error, count() AS n, sum(length(raw)) AS raw_bytes FROM events "
            "WHERE log_name = 'azure' GROUP BY parse_error ORDER BY parse_error"
        )
        by_reason: dict[str, int] = {}
        for row in rows:
            reason = row["parse_error"]
            key = next((p for p in ("not JSON", "empty message") if reason.startswith(p)), reason)
            by_reason[key] = by_reason.get(key, 0) + row["n"]
        expected: dict[str, int] = {}
        for _body, reason in bad:
            expected[reason] = expected.get(reason, 0) + 1
        expected["no parser for category 'SignInLogs'"] = 20_000
        assert by_reason == expected
        (valid,) = service.store.select(
            "SELECT uniqExact(JSONExtractInt(raw, 'seq')) AS seqs FROM events "
            "WHERE log_name = 'azure' AND category = 'SignInLogs'"
        )
        assert valid["seqs"] == 20_000
        (big,) = service.store.select(
            "SELECT count() AS n FROM events WHERE log_name = 'azure' AND raw_base64 "
            "AND length(base64Decode(JSONExtractString(concat('[', raw, ']'), 1))) = 1000001"
        )
        assert big["n"] == sum(1 for body, _ in bad if len(body) == 1_000_001)
        repaired = sum(1 for body, _ in bad if body.startswith(b"{'"))
        assert service.health["azure"].snapshot()["repairs"] == {"single_quotes": repaired}
