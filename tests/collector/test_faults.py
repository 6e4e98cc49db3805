"""Faults injected while collecting from a real broker: what is produced is stored exactly once,
and health says at each step what a user needs to know.

Disks fill up on a small tmpfs (root mounts it; without root these tests are skipped).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from hubsight.devbroker import LocalBroker, free_port
from hubsight.service import Service
from hubsight.store.catalog import Catalog

from tests.faults import SmallDisk
from tests.support import (
    FAST_COLLECTOR,
    create_topic,
    kafka_source,
    produce,
    serving,
    state_of,
    stored_count,
    wait_until,
)

pytestmark = pytest.mark.integration

# Batches of 1,000 events (10 messages).
SMALL_BATCHES = dataclasses.replace(FAST_COLLECTOR, max_batch_messages=10)


def _bodies(messages: int, per_message: int, pad: int = 0, first: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {
                "records": [
                    {
                        "category": "AuditLogs",
                        "seq": m * per_message + i,
                        "pad": os.urandom(pad).hex(),
                    }
                    for i in range(per_message)
                ]
            }
        ).encode()
        for m in range(first, first + messages)
    ]


def _stored_once(service: Service, name: str) -> dict[str, Any]:
    (row,) = service.store.select(
        "SELECT count() AS n, uniqExact(JSONExtractInt(raw, 'seq')) AS seqs, "
        "uniqExact(source_partition, source_offset, record_index) AS positions "
        "FROM events WHERE log_name = {n:String}",
        {"n": name},
    )
    return row


def test_a_full_disk_stops_ingestion_with_a_hint_and_it_resumes_when_space_is_freed(
    broker: LocalBroker, topic: str, tmp_path: Path
) -> None:
    with SmallDisk(tmp_path / "disk", 16) as disk:
        data_dir = disk.path / "data"
        produce(broker.bootstrap, topic, _bodies(20, 100, pad=200), partitions=4)
        with serving(
            data_dir, kafka_source("azure", broker.bootstrap, topic), settings=SMALL_BATCHES
        ) as service:
            wait_until(lambda: stored_count(service, "azure") == 2_000, 60, "2,000 events")
            # The disk filled to 64 KB short of full: the next batch (~200 KB compressed) cannot
            # be written, whatever the machine's load (filling it by producing more raced the
            # store's merges, which free space as they go).
            filler = disk.path / "filler"
            with open(filler, "wb") as handle:
                room = shutil.disk_usage(disk.path).free - 64 * 1024
                while room > 0:
                    room -= handle.write(bytes(min(room, 1 << 20)))
            produce(broker.bootstrap, topic, _bodies(20, 100, pad=200, first=20), partitions=4)
            wait_until(
                lambda: state_of(service, "azure").get("problem") == "store", 60, "a store error"
            )
            health = state_of(service, "azure")
            assert health["state"] == "error"
            store_dir = str(data_dir / "clickhouse")
            assert f"the disk of {store_dir} is full" in health["last_error"]
            assert " free)" in health["last_error"]
            assert health["hint"] == (
                f"free space on the disk of {store_dir} or give it more; "
                "ingestion resumes by itself when space is freed"
            )
            assert stored_count(service, "azure") == 2_000

            filler.unlink()
            wait_until(lambda: stored_count(service, "azure") == 4_000, 60, "4,000 events")
            wait_until(lambda: state_of(service, "azure")["state"] == "running", 30, "running")
            # Nothing lost, nothing stored twice: every offset of the batch that met the full
            # disk stayed uncommitted, and was read again.
            assert _stored_once(service, "azure") == {"n": 4_000, "seqs": 4_000, "positions": 4_000}


def test_a_poison_message_nested_10000_deep_is_kept_and_the_partition_goes_on(
    broker: LocalBroker, topic: str, data_dir: Path
) -> None:
    poison = b'{"b": ' * 10_000 + b"1" + b"}" * 10_000
    good = _bodies(50, 2)
    produce(broker.bootstrap, topic, [*good[:25], poison, *good[25:]], partitions=1)
    with serving(data_dir, kafka_source("azure", broker.bootstrap, topic)) as service:
        wait_until(lambda: stored_count(service, "azure") == 101, 60, "101 events")
        rows = service.store.select(
            "SELECT source_offset, parse_error, raw FROM events WHERE log_name = 'azure' "
            "AND parse_error NOT LIKE 'no parser%'"
        )
        assert rows == [
            {
                "source_offset": 25,
                "parse_error": "nested too deeply to read",
                "raw": poison.decode(),
            }
        ]
        # 100 good records with their sequence numbers, and the poison message.
        assert _stored_once(service, "azure") == {"n": 101, "seqs": 100, "positions": 101}
        assert state_of(service, "azure")["last_error"] is None


def test_a_broker_restarted_empty_is_read_from_the_start_and_health_says_why(
    tmp_path: Path, data_dir: Path
) -> None:
    port = free_port()
    source = kafka_source("azure", f"localhost:{port}", "restarted")
    went_back = (
        "offsets of partition 0 of restarted went back from {} to 0: the topic was re-created; "
        "reading it from the start"
    )
    with LocalBroker(port=port, log_path=tmp_path / "first.log") as first:
        create_topic(first.bootstrap, 1, "restarted")
        produce(first.bootstrap, "restarted", _bodies(30, 1), partitions=1)
        with serving(data_dir, source) as service:
            wait_until(lambda: stored_count(service, "azure") == 30, 60, "30 events")
            # tansu keeps topics in memory: restarted, it numbers messages from 0 again.
            first.stop()
            with LocalBroker(port=port, log_path=tmp_path / "second.log") as second:
                create_topic(second.bootstrap, 1, "restarted")
                produce(second.bootstrap, "restarted", _bodies(5, 1, first=30), partitions=1)
                wait_until(lambda: stored_count(service, "azure") == 35, 90, "35 events")
                notices = [n["message"] for n in state_of(service, "azure")["notices"]]
                assert notices == [went_back.format(29)]
                wait_until(lambda: state_of(service, "azure")["state"] == "running", 30, "running")
    # Restarted once more while hubsight is stopped, and refilled with more messages than it
    # had: the log ends past the last stored offset, but the message at offset 0 was enqueued
    # at another time than the one last stored there.
    Catalog(data_dir).remove("azure")  # serving() adds it again; its events stay
    with LocalBroker(port=port, log_path=tmp_path / "third.log") as third:
        create_topic(third.bootstrap, 1, "restarted")
        # Two calls: tansu answers the offset after its last batch's first message as the end
        # of the log, so one batch of 40 would look shorter than the old log.
        produce(third.bootstrap, "restarted", _bodies(35, 1, first=35), partitions=1)
        produce(third.bootstrap, "restarted", _bodies(5, 1, first=70), partitions=1)
        with serving(data_dir, source) as service:
            wait_until(lambda: stored_count(service, "azure") == 75, 90, "75 events")
            notices = [n["message"] for n in state_of(service, "azure")["notices"]]
            assert notices == [went_back.format(4)]
            # The three logs' messages, each once (their offsets repeat).
            assert _stored_once(service, "azure") == {"n": 75, "seqs": 75, "positions": 40}


def test_a_broker_that_stops_answering_is_stalled_then_read_on(
    tmp_path: Path, data_dir: Path
) -> None:
    # Asked after 2 s without a message, the broker has 2 s to answer (10 s and 10 s by default:
    # stalled within about 20 s).
    settings = dataclasses.replace(FAST_COLLECTOR, stall_after_s=2.0, stall_timeout_s=2.0)
    with LocalBroker(log_path=tmp_path / "broker.log") as broker:
        create_topic(broker.bootstrap, 2, "hung")
        produce(broker.bootstrap, "hung", _bodies(20, 5), partitions=2)
        source = kafka_source("azure", broker.bootstrap, "hung")
        with serving(data_dir, source, settings=settings) as service:
            wait_until(lambda: stored_count(service, "azure") == 100, 60, "100 events")
            # Negative: a broker with nothing to send, but answering, is not stalled.
            time.sleep(settings.stall_after_s + 1.5)
            assert state_of(service, "azure")["state"] == "running"
            os.killpg(broker.pid, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                wait_until(lambda: state_of(service, "azure")["state"] == "stalled", 30, "stalled")
                assert time.monotonic() - stopped < 10
                health = state_of(service, "azure")
            finally:
                os.killpg(broker.pid, signal.SIGCONT)
            assert health["problem"] == "stalled"
            assert health["last_error"].startswith("the broker has not answered for ")
            assert health["hint"] == (
                f"the broker at {broker.bootstrap} keeps the connection but does not answer "
                "(hung, paused or overloaded): check its process and load; collection goes on "
                "by itself when it answers"
            )
            produce(broker.bootstrap, "hung", _bodies(20, 5, first=20), partitions=2)
            wait_until(lambda: stored_count(service, "azure") == 200, 60, "200 events")
            wait_until(lambda: state_of(service, "azure")["state"] == "running", 30, "running")
            assert _stored_once(service, "azure") == {"n": 200, "seqs": 200, "positions": 200}
