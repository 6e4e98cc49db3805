"""Ingest benchmark: broker -> collector -> committed store, beside a bare consume loop.

    .venv/bin/python bench/ingest.py [--records 100000] [--per-message 50] [--freshness-s 20]

Prints, in one run on the local tansu broker:
- the rate of a bare confluent-kafka consume loop over the topic (records/s, MB/s);
- hubsight's rate from broker to committed store, with the full Azure parsers and with parsing
  reduced to splitting (every record Unparsed), and its ratio to the bare loop;
- where the time went: the store writes' share of the wall time (from the collector's
  ``hubsight_store_write_seconds`` metric) and the process's CPU time (CPU far below wall time
  means the machine is busy elsewhere: the figures then say little about hubsight);
- CPU per record of each step for one batch of 2,000 (parse, JSON encoding, and the engine's
  share split by streaming the same rows into a table that discards them, one without
  projections, one without fsync, then ``store.write`` with its verification): CPU time, not
  wall time, so it stays meaningful on a loaded machine;
- freshness: p50/p99 from produce to stored (searchable) while producing 5,000 records/s.
Both rates are printed from the first record (bare) or first stored batch (hubsight), and
from the subscription (both including the group join): compare like with like.
The records are simulated 2-5 KB sign-in records (``hubsight.simulate``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import msgspec
from chdb import session as chdb_session
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from hubsight.collector import Collector, CollectorSettings
from hubsight.devbroker import LocalBroker
from hubsight.health import SourceHealth
from hubsight.metrics import Metrics
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import EmptyRegistry, MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import generate_messages
from hubsight.sources.base import Message
from hubsight.sources.config import make_source
from hubsight.sources.registry import driver_for
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.schema import PROJECTIONS

PARTITIONS = 4


class _Envelope(msgspec.Struct):
    records: list[msgspec.Raw]


def _bodies(records: int, per_message: int) -> tuple[list[bytes], int]:
    # Generating is slower than ingesting: make a pool once and cycle through it.
    pool = generate_messages(
        200, seed=7, categories=["SignInLogs"], records_per_message=per_message
    )
    decoder = msgspec.json.Decoder(_Envelope)
    counts = [len(decoder.decode(b).records) for b in pool]
    bodies: list[bytes] = []
    total = 0
    index = 0
    while total < records:
        bodies.append(pool[index % len(pool)])
        total += counts[index % len(pool)]
        index += 1
    return bodies, total


def _topic(bootstrap: str, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS)])[name].result(timeout=30)
    return name


def _produce(bootstrap: str, topic: str, bodies: list[bytes]) -> float:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "message.max.bytes": 2_000_000}
    )
    started = time.perf_counter()
    for index, body in enumerate(bodies):
        producer.produce(topic, body, partition=index % PARTITIONS)
        producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


def bare_consume(bootstrap: str, topic: str, messages: int) -> tuple[float, float, int]:
    """Seconds to consume ``messages`` with a plain loop from the first message and from the
    subscription (the group join included, as hubsight's second figure), and bytes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "max.partition.fetch.bytes": 2 * 1024 * 1024,
            "fetch.max.bytes": 50 * 1024 * 1024,
        }
    )
    subscribed = time.perf_counter()
    consumer.subscribe([topic])
    seen = 0
    size = 0
    first = None
    while seen < messages:
        batch = consumer.consume(num_messages=1000, timeout=1.0)
        for message in batch:
            if message.error():
                continue
            if first is None:
                first = time.perf_counter()
            seen += 1
            size += len(message.value() or b"")
    done = time.perf_counter()
    consumer.close()
    return done - (first or done), done - subscribed, size


def hubsight_ingest(
    bootstrap: str, topic: str, records: int, registry: ParserRegistry
) -> tuple[float, float, float, str]:
    """Seconds from the first stored batch to the last, seconds including the group join,
    bytes on disk per event once merged, and where the time went."""
    metrics = Metrics()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(data_dir=Path(tmp)))
        config = make_source(
            {
                "name": "bench",
                "profile": {"kind": "kafka", "bootstrap": bootstrap},
                "topics": [topic],
                "keep_unparsed": True,
                "consumer_group": f"hubsight-{topic}",
                "tuning": {"session_timeout_ms": 6000},
            }
        )
        health = SourceHealth("bench")
        first: list[float] = []

        def stored(_events: object) -> None:
            if not first:
                first.append(time.perf_counter())

        collector = Collector(
            config,
            driver_for(config),
            store,
            health,
            registry,
            CollectorSettings(max_batch_messages=500, poll_timeout_s=0.2),
            on_stored=stored,
            metrics=metrics.for_source("bench"),
        )
        stop = threading.Event()
        started = time.perf_counter()
        cpu_started = time.process_time()
        thread = threading.Thread(target=collector.run, args=(stop,))
        thread.start()
        while health.events_stored < records:
            time.sleep(0.01)
        done = time.perf_counter()
        cpu = time.process_time() - cpu_started
        stop.set()
        thread.join()
        labels = {"source": "bench"}
        writes = metrics.registry.get_sample_value("hubsight_store_write_seconds_sum", labels)
        batches = metrics.registry.get_sample_value("hubsight_store_write_seconds_count", labels)
        # The writer thread waits on the store (encoding the rows as JSON, then ClickHouse's
        # INSERT) while the consumer thread polls, splits and parses the next batches.
        split = (
            f"store writes (JSON encoding + INSERT) {writes or 0:.1f} s of {done - started:.1f} s"
            f" wall in {batches or 0:.0f} batches; process CPU {cpu:.1f} s"
        )
        store.execute("OPTIMIZE TABLE events FINAL")
        (row,) = store.select(
            "SELECT sum(bytes_on_disk) / sum(rows) AS per_event FROM system.parts "
            "WHERE active AND table = 'events'"
        )
        store.close()
    return done - first[0], done - started, float(row["per_event"]), split


def _cpu_ms(work: Callable[[], object], rounds: int = 3) -> float:
    """The least process CPU time (ms, every thread, ClickHouse's too) of ``work``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best * 1000


def write_profile(bodies: list[bytes], batch: int = 2_000) -> list[tuple[str, float]]:
    """CPU time per record of each step from a message to a stored event, for one batch.

    The engine's share is split by inserting the same rows into a table that discards them
    (reading the JSON only) and into one without the events table's projections.
    """
    parser = MessageParser(log_name="bench", registry=default_registry())
    messages = [
        Message(topic="t", partition=0, offset=i, value=body, received_time=datetime.now(UTC))
        for i, body in enumerate(bodies)
    ]
    events: list[Event] = []
    used = 0
    for message in messages:
        if len(events) >= batch:
            break
        events.extend(parser.parse(message))
        used += 1
    events = events[:batch]
    encode = msgspec.json.Encoder().encode
    body = encode(events)
    settings = (
        "SETTINGS date_time_input_format = 'best_effort', materialize_skip_indexes_on_insert = 0, "
        "input_format_json_read_objects_as_strings = 1"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(data_dir=Path(tmp)))
        # A connection of the bench's own to the store's engine, to stream the same INSERT
        # into copies of the events table: without fsync, and without projections too.
        engine: Any = cast(Any, chdb_session).Session(str(Path(tmp) / "clickhouse"))
        engine.query("CREATE TABLE discard AS events ENGINE = Null")
        engine.query(
            "CREATE TABLE projected AS events "
            "ENGINE = MergeTree ORDER BY (log_set, log_name, timestamp)"
        )
        engine.query("CREATE TABLE plain AS projected")
        engine.query(
            "ALTER TABLE plain " + ", ".join(f"DROP PROJECTION {name}" for name in PROJECTIONS)
        )

        def stream(table: str) -> None:
            with engine.send_insert(f"INSERT INTO {table} {settings}", "JSONEachRow") as inserter:
                inserter.append(body)
                inserter.finish()

        steps = {
            "parse (split, decode, normalize)": _cpu_ms(
                lambda: [parser.parse(m) for m in messages[:used]]
            ),
            "encode rows as JSON": _cpu_ms(lambda: encode(events)),
            "engine: read the JSON": _cpu_ms(lambda: stream("discard")),
            "engine: + write a part": _cpu_ms(lambda: stream("plain")),
            "engine: + projections": _cpu_ms(lambda: stream("projected")),
            "engine: + fsync (the events table)": _cpu_ms(lambda: stream("events")),
            "store.write (encode, insert, verify)": _cpu_ms(lambda: store.write(events)),
        }
        engine.close()
        store.close()
    return [(name, ms * 1000 / len(events)) for name, ms in steps.items()]


def freshness(bootstrap: str, bodies: list[bytes], seconds: float, per_s: int) -> list[float]:
    """Produce-to-stored latencies (s) per message while producing ``per_s`` records/s."""
    topic = _topic(bootstrap, "bench-freshness")
    produced_at: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(data_dir=Path(tmp)))
        config = make_source(
            {
                "name": "fresh",
                "profile": {"kind": "kafka", "bootstrap": bootstrap},
                "topics": [topic],
                "keep_unparsed": True,
                "start_from": "earliest",
                "tuning": {"session_timeout_ms": 6000},
            }
        )

        def stored(events: list[msgspec.Struct]) -> None:
            now = time.perf_counter()
            seen = {(e.source_partition, e.source_offset) for e in events}  # type: ignore[attr-defined]
            for key in seen:
                if key in produced_at:
                    latencies.append(now - produced_at.pop(key))

        health = SourceHealth("fresh")
        collector = Collector(
            config,
            driver_for(config),
            store,
            health,
            default_registry(),
            CollectorSettings(poll_timeout_s=0.1),
            on_stored=stored,  # type: ignore[arg-type]
        )
        stop = threading.Event()
        thread = threading.Thread(target=collector.run, args=(stop,))
        thread.start()
        time.sleep(8)  # the group join

        def delivered(sent_at: float, err: object, message: object) -> None:
            if err is None:
                key = (message.partition(), message.offset())  # type: ignore[attr-defined]
                produced_at[key] = sent_at

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        per_message = 50
        interval = per_message / per_s
        deadline = time.perf_counter() + seconds
        index = 0
        next_at = time.perf_counter()
        while time.perf_counter() < deadline:
            body = bodies[index % len(bodies)]
            producer.produce(
                topic, body, on_delivery=functools.partial(delivered, time.perf_counter())
            )
            producer.poll(0)
            index += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        producer.flush(30)
        time.sleep(3)
        stop.set()
        thread.join()
        store.close()
    return latencies


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--freshness-s", type=float, default=20.0)
    args = parser.parse_args()

    bodies, records = _bodies(args.records, args.per_message)
    payload = sum(len(b) for b in bodies)
    print(
        f"records: {records} in {len(bodies)} messages over {PARTITIONS} partitions, "
        f"{payload / records:.0f} bytes/record, {payload / 1e6:.0f} MB"
    )
    with LocalBroker() as broker:
        bare_topic = _topic(broker.bootstrap, "bench-bare")
        full_topic = _topic(broker.bootstrap, "bench-full")
        split_topic = _topic(broker.bootstrap, "bench-split")
        for topic in (bare_topic, full_topic, split_topic):
            seconds = _produce(broker.bootstrap, topic, bodies)
        print(f"produce: {seconds:.1f} s per topic")

        bare_s, bare_total, bare_bytes = bare_consume(broker.bootstrap, bare_topic, len(bodies))
        bare_rate = records / bare_s
        print(
            f"bare consume loop:       {bare_rate:>9,.0f} records/s  "
            f"{bare_bytes / bare_s / 1e6:>6.0f} MB/s  "
            f"({records / bare_total:,.0f}/s with group join)"
        )

        for label, topic, registry in (
            ("hubsight, full parsing", full_topic, default_registry()),
            ("hubsight, split only", split_topic, EmptyRegistry()),
        ):
            steady, total, per_event, split = hubsight_ingest(
                broker.bootstrap, topic, records, registry
            )
            rate = records / steady
            print(
                f"{label + ':':24} {rate:>9,.0f} records/s  {payload / steady / 1e6:>6.0f} MB/s"
                f"  ({rate / bare_rate:.2f} of bare; {records / total:,.0f}/s with group join,"
                f" {bare_total / total:.2f} of bare's; {per_event:,.0f} bytes/event on disk)"
            )
            print(f"{'':24} where the time went: {split}")

        print(f"CPU per record, one batch of 2,000 (least of 3; load {os.getloadavg()[0]:.1f}):")
        for name, micros in write_profile(bodies):
            print(f"  {name:40} {micros:>6.0f} µs")

        latencies = sorted(freshness(broker.bootstrap, bodies, args.freshness_s, 5_000))
        if latencies:
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"freshness at 5,000 records/s: produce->stored p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms over {len(latencies)} messages"
            )


if __name__ == "__main__":
    main()
