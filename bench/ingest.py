"""Ingest benchmark: broker -> collector -> committed store, beside a bare consume loop.

    .venv/bin/python bench/ingest.py [--records 100000] [--per-message 50] [--freshness-s 20]
                                     [--batch-mb 16] [--no-split-only]

Prints, in one run on the local tansu broker:
- the rate of a bare confluent-kafka consume loop over the topic (records/s, MB/s);
- hubsight's rate from broker to committed store (the collector with its default batching),
  with the full Azure parsers and with parsing reduced to splitting (every record Unparsed),
  and its ratio to the bare loop;
- where the time went in that run: CPU per record of each thread (the consumer thread polls,
  splits and parses; the writer thread encodes rows and streams the INSERT; ClickHouse's own
  threads; librdkafka's) and of the broker process, read from ``/proc`` before and after, so
  the figures are CPU time, which other work on the machine distorts far less than wall time;
  and the store writes' share of the wall time (the collector's write-latency metric); the
  most records/s the machine's cores could take at that CPU per record were they idle; the
  CPU of merging the stored parts into one afterwards (the full-text index is built then);
- CPU per record of each step for one batch of the collector's size (parse, JSON encoding,
  the engine's share split by streaming the same rows into a table that discards them, one without
  projections or fsync, one without fsync, then ``store.write`` with its verification, and the
  same write as wide parts, as the store wrote batches over 10 MB before), and of writing
  8 such batches and merging them into one part, into tables without projections or
  full-text index, with the projections, and with both (the merges' share: the index is built
  at every merge, from every row merged);
- freshness: p50/p99 from produce to stored (searchable) while producing 5,000 records/s.
Both rates are printed from the first record (bare) or first stored batch (hubsight, counting
only what was stored after it), and from the subscription (both including the group join).
The records are simulated 2-5 KB sign-in records (``hubsight.simulate``). The process's cyclic
GC runs with the thresholds ``hubsight run`` sets (its detection engine's, ``tune_gc``).
``--batch-mb`` sets the collector's batch bytes (``CollectorSettings.max_batch_bytes``).
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
from hubsight.detect.engine import tune_gc
from hubsight.devbroker import LocalBroker
from hubsight.health import SourceHealth
from hubsight.metrics import Metrics
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.pipeline import EmptyRegistry, MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import generate_messages
from hubsight.sources.base import Message
from hubsight.sources.config import make_source
from hubsight.sources.registry import driver_for
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.embedded import INSERT_SETTINGS
from hubsight.store.schema import COMPACT_PARTS, PROJECTIONS

PARTITIONS = 4
# Batches written and merged into one part for the profile's merge figures.
MERGED_BATCHES = 8


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


def bare_consume(
    broker: LocalBroker, topic: str, messages: int
) -> tuple[float, float, int, float, float]:
    """Seconds to consume ``messages`` with a plain loop from the first message and from the
    subscription (the group join included, as hubsight's second figure), bytes, and the CPU
    seconds of this process and of the broker meanwhile."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"bare-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "max.partition.fetch.bytes": 2 * 1024 * 1024,
            "fetch.max.bytes": 50 * 1024 * 1024,
        }
    )
    cpu, broker_cpu = time.process_time(), _process_cpu(broker.pid)
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
    cpu, broker_cpu = time.process_time() - cpu, _process_cpu(broker.pid) - broker_cpu
    consumer.close()
    return done - (first or done), done - subscribed, size, cpu, broker_cpu


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each of this process's threads, by thread id, with its name."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads: dict[int, tuple[str, float]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        # The name is in parentheses and may hold spaces; utime and stime follow it.
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        fields = rest.split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return threads


def _process_cpu(pid: int) -> float:
    """CPU seconds so far of another process (the broker), its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_stage(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    roles: dict[int, str],
) -> dict[str, float]:
    """CPU seconds between two ``_thread_cpu`` readings, by stage: the collector's threads by
    their id, librdkafka's by their names (``rdk:``), every other thread ClickHouse's."""
    stages: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        if tid in roles:
            stage = roles[tid]
        elif name.startswith("rdk:"):
            stage = "librdkafka threads (fetch)"
        else:
            stage = "ClickHouse threads (INSERT, merges)"
        used = cpu - before.get(tid, (name, 0.0))[1]
        stages[stage] = stages.get(stage, 0.0) + used
    return stages


def hubsight_ingest(
    broker: LocalBroker, topic: str, records: int, registry: ParserRegistry, batch_bytes: int
) -> tuple[float, float, float, list[str]]:
    """Records/s from the first stored batch on, records/s including the group join, bytes
    on disk per event once merged, and where the time went (lines to print)."""
    metrics = Metrics()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(data_dir=Path(tmp)))
        config = make_source(
            {
                "name": "bench",
                "profile": {"kind": "kafka", "bootstrap": broker.bootstrap},
                "topics": [topic],
                "keep_unparsed": True,
                "consumer_group": f"hubsight-{topic}",
                "tuning": {"session_timeout_ms": 6000},
            }
        )
        health = SourceHealth("bench")
        first: list[tuple[float, int]] = []
        roles: dict[int, str] = {}

        def stored(_events: object) -> None:
            if not first:
                first.append((time.perf_counter(), health.events_stored))
                roles[threading.get_native_id()] = "writer thread (encode, INSERT)"

        collector = Collector(
            config,
            driver_for(config),
            store,
            health,
            registry,
            CollectorSettings(poll_timeout_s=0.2, max_batch_bytes=batch_bytes),
            on_stored=stored,
            metrics=metrics.for_source("bench"),
        )
        stop = threading.Event()
        thread = threading.Thread(target=collector.run, args=(stop,))
        cpu_before, broker_before = _thread_cpu(), _process_cpu(broker.pid)
        process_before = time.process_time()
        started = time.perf_counter()
        thread.start()
        while health.events_stored < records:
            time.sleep(0.01)
        done = time.perf_counter()
        cpu_after, broker_after = _thread_cpu(), _process_cpu(broker.pid)
        stop.set()
        thread.join()
        roles[cast(int, thread.native_id)] = "consumer thread (poll, split, parse)"
        roles[threading.get_native_id()] = "the bench's own thread"
        stages = _cpu_by_stage(cpu_before, cpu_after, roles)
        stages["broker process (tansu)"] = broker_after - broker_before
        labels = {"source": "bench"}
        writes = metrics.registry.get_sample_value("hubsight_store_write_seconds_sum", labels)
        batches = metrics.registry.get_sample_value("hubsight_store_write_seconds_count", labels)
        stored_events = health.events_stored
        lines = [
            f"{name:40} {cpu * 1e6 / stored_events:>6.1f} µs"
            for name, cpu in sorted(stages.items(), key=lambda item: -item[1])
        ]
        lines.append(
            f"{'CPU in all, per record':40} {sum(stages.values()) * 1e6 / stored_events:>6.1f} µs"
            f"  ({sum(stages.values()):.1f} s of CPU in {done - started:.1f} s wall)"
        )
        cores = os.cpu_count() or 1
        lines.append(
            f"at this CPU per record {cores} idle cores would take at most "
            f"{cores * stored_events / sum(stages.values()):,.0f} records/s"
        )
        # The writer thread waits on the store (encoding the rows, then ClickHouse's INSERT)
        # while the consumer thread polls, splits and parses the next batches.
        lines.append(
            f"store writes {writes or 0:.1f} s of {done - started:.1f} s wall, "
            f"{batches or 0:.0f} batches of {stored_events / (batches or 1):,.0f} events"
        )
        # Not part of the rate, but of what sustained ingestion costs: ClickHouse builds the
        # full-text index on raw when it first merges a batch's part, then merges on.
        cpu = time.process_time()
        store.execute("OPTIMIZE TABLE events FINAL")
        lines.append(
            "then merging every part into one (the full-text index built where no merge had "
            f"yet): {(time.process_time() - cpu) * 1e6 / stored_events:.1f} µs CPU per record"
        )
        # Larger batches leave more of the merging for later: the whole, from the start to
        # one merged part (every thread of this process, merges running between the two
        # readings above included, and the broker's share), is what ingesting costs.
        whole = time.process_time() - process_before + broker_after - broker_before
        lines.append(
            f"{'the run and the merge into one, in all':40} {whole * 1e6 / stored_events:>6.1f} µs"
        )
        (row,) = store.select(
            "SELECT sum(bytes_on_disk) / sum(rows) AS per_event FROM system.parts "
            "WHERE active AND table = 'events'"
        )
        store.close()
    first_at, first_count = first[0]
    steady = (stored_events - first_count) / (done - first_at)
    return steady, stored_events / (done - started), float(row["per_event"]), lines


def _cpu_ms(work: Callable[[], object], rounds: int = 3) -> float:
    """The least process CPU time (ms, every thread, ClickHouse's too) of ``work``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best * 1000


def write_profile(bodies: list[bytes], batch_bytes: int) -> tuple[int, list[tuple[str, float]]]:
    """The events of one batch of the collector's size, and CPU time per record of each step
    from a message to a stored event for it.

    The engine's share is split by inserting the same rows into a table that discards them
    (reading the JSON only), one without the events table's projections and fsync, and one
    without fsync; then the batch as wide parts, as the store did before. The last three steps
    write ``MERGED_BATCHES`` batches and merge them into one part, without the projections and
    the full-text index, with the projections, and with both.
    """
    parser = MessageParser(log_name="bench", registry=default_registry())
    messages: list[Message] = []
    size = 0
    for offset, body in enumerate(bodies):
        size += len(body)
        if messages and size > batch_bytes:
            break
        messages.append(
            Message(
                topic="t", partition=0, offset=offset, value=body, received_time=datetime.now(UTC)
            )
        )
    events = [event for message in messages for event in parser.parse(message)]
    encode = msgspec.json.Encoder().encode
    body = encode(events)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(data_dir=Path(tmp)))
        # A connection of the bench's own to the store's engine, to stream the same INSERT
        # into copies of the events table: without fsync, and without projections too.
        engine: Any = cast(Any, chdb_session).Session(str(Path(tmp) / "clickhouse"))
        engine.query("CREATE TABLE discard AS events ENGINE = Null")
        engine.query(
            "CREATE TABLE projected AS events ENGINE = MergeTree "
            f"ORDER BY (log_set, log_name, timestamp) SETTINGS {COMPACT_PARTS}"
        )
        engine.query("CREATE TABLE plain AS projected")
        engine.query(
            "ALTER TABLE plain " + ", ".join(f"DROP PROJECTION {name}" for name in PROJECTIONS)
        )
        engine.query("CREATE TABLE wide AS events")
        engine.query("ALTER TABLE wide MODIFY SETTING min_bytes_for_wide_part = 10485760")
        # For the merges: copies of the events table without fsync (merges do not fsync),
        # with both its projections and its full-text index, with the projections only, and
        # with neither.
        engine.query("CREATE TABLE indexed AS projected")
        engine.query("CREATE TABLE unindexed AS projected")
        engine.query("ALTER TABLE unindexed DROP INDEX raw_tokens")
        engine.query("CREATE TABLE bare AS plain")
        engine.query("ALTER TABLE bare DROP INDEX raw_tokens")

        def stream(table: str) -> None:
            with engine.send_insert(f"INSERT INTO {table} {INSERT_SETTINGS}", "JSONEachRow") as ins:
                ins.append(body)
                ins.finish()

        def merged(table: str) -> float:
            # A backlog's life in the engine: its batches written (background merges running
            # as they would) and then merged into one part, which builds the full-text index
            # of every row merged. Once, per record of all the batches: it is slow to repeat.
            started = time.process_time()
            for _ in range(MERGED_BATCHES):
                stream(table)
            engine.query(f"OPTIMIZE TABLE {table} FINAL")
            return (time.process_time() - started) * 1000 / MERGED_BATCHES

        steps = {
            "parse (split, decode, normalize)": _cpu_ms(
                lambda: [parser.parse(m) for m in messages]
            ),
            "encode rows as JSON": _cpu_ms(lambda: encode(events)),
            "engine: read the JSON": _cpu_ms(lambda: stream("discard")),
            "engine: + write a compact part": _cpu_ms(lambda: stream("plain")),
            "engine: + projections": _cpu_ms(lambda: stream("projected")),
            "engine: + fsync (the events table)": _cpu_ms(lambda: stream("events")),
            "store.write (encode, insert, verify)": _cpu_ms(lambda: store.write(events)),
            "engine, as wide parts (before)": _cpu_ms(lambda: stream("wide")),
            f"engine, {MERGED_BATCHES} batches, merged into one": merged("bare"),
            "  + projections": merged("unindexed"),
            "  + full-text index (as the events table)": merged("indexed"),
        }
        engine.close()
        store.close()
    return len(events), [(name, ms * 1000 / len(events)) for name, ms in steps.items()]


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
    parser.add_argument(
        "--batch-mb",
        type=float,
        default=CollectorSettings().max_batch_bytes / 2**20,
        help="the collector's batch bytes in MiB (default: the collector's)",
    )
    parser.add_argument(
        "--no-split-only",
        action="store_true",
        help="skip the run with parsing reduced to splitting",
    )
    args = parser.parse_args()
    batch_bytes = int(args.batch_mb * 2**20)
    tune_gc()

    bodies, records = _bodies(args.records, args.per_message)
    payload = sum(len(b) for b in bodies)
    print(
        f"records: {records} in {len(bodies)} messages over {PARTITIONS} partitions, "
        f"{payload / records:.0f} bytes/record, {payload / 1e6:.0f} MB"
    )
    with LocalBroker() as broker:
        bare_topic = _topic(broker.bootstrap, "bench-bare")
        full_topic = _topic(broker.bootstrap, "bench-full")
        topics = [bare_topic, full_topic]
        if not args.no_split_only:
            topics.append(_topic(broker.bootstrap, "bench-split"))
        for topic in topics:
            seconds = _produce(broker.bootstrap, topic, bodies)
        print(f"produce: {seconds:.1f} s per topic; batches of {args.batch_mb:g} MiB")

        bare_s, bare_total, bare_bytes, bare_cpu, bare_broker = bare_consume(
            broker, bare_topic, len(bodies)
        )
        bare_rate = records / bare_s
        print(
            f"bare consume loop:       {bare_rate:>9,.0f} records/s  "
            f"{bare_bytes / bare_s / 1e6:>6.0f} MB/s  "
            f"({records / bare_total:,.0f}/s with group join; CPU per record "
            f"{bare_cpu * 1e6 / records:.1f} µs here, {bare_broker * 1e6 / records:.1f} µs "
            "in the broker)"
        )

        runs: list[tuple[str, str, ParserRegistry]] = [
            ("hubsight, full parsing", full_topic, default_registry())
        ]
        if not args.no_split_only:
            runs.append(("hubsight, split only", topics[2], EmptyRegistry()))
        for label, topic, registry in runs:
            rate, total, per_event, spent = hubsight_ingest(
                broker, topic, records, registry, batch_bytes
            )
            print(
                f"{label + ':':24} {rate:>9,.0f} records/s  {rate * payload / records / 1e6:>6.0f}"
                f" MB/s  ({rate / bare_rate:.2f} of bare; {total:,.0f}/s with group join,"
                f" {total * bare_total / records:.2f} of bare's; {per_event:,.0f} bytes/event"
                f" on disk; load {os.getloadavg()[0]:.1f})"
            )
            print(f"{'':24} where the time went, CPU per record:")
            for line in spent:
                print(f"{'':26}{line}")

        batch, steps = write_profile(bodies, batch_bytes)
        print(
            f"CPU per record, one batch of the collector's size ({batch:,} records; least of 3;"
            f" load {os.getloadavg()[0]:.1f}):"
        )
        for name, micros in steps:
            print(f"  {name:40} {micros:>6.1f} µs")

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
