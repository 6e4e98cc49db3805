"""Soak benchmark: ``hubsight run`` fed at a steady rate, its resources printed each interval.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 300] [--users 1000] [--interval 60]
                                   [--prefill 10000000] [--window-cap 500000]

Starts a local tansu broker, a data directory whose one source reads it, and ``hubsight run
--no-web`` in a process of its own; feeds a simulated tenant (every scenario planted) live at
``--rate`` records/s; and prints, every ``--interval`` seconds, the process's resident memory,
open files and threads, the sizes of the SQLite write-ahead logs, the events stored so far and
per second since the last sample, the service's CPU (its share of one core, and CPU time per
event stored) and the load average. A service storing less than it is fed holds a backlog all
along (batches at their largest): feed it a rate the machine sustains. At the end it compares
the last sample with the one at a third of the run (10 minutes of 30): what grew after the
warm-up, and RSS's least, mean and most from there. Not a pass/fail test; the figures depend on
the machine's load.

Each sample also splits the heap, from the service's ``/metrics`` (read on its owner's socket):
the engine's (ClickHouse allocates with a jemalloc of its own: ``eng_res`` its resident pages,
``eng_alloc`` its live allocations, ``caches`` what its caches hold of that), ``other`` the rest
of the heap (Python's objects, malloc's: ``malloc`` of it in use, thread stacks), and the
detection state (``entries`` in windows, ``state_est`` its size in MB estimated from the
counts, not measured: ``ENTRY_BYTES`` an entry with its window, the figure the engine's cap
warning gives, and ``BASELINE_BYTES`` a baseline).

``--prefill N`` first stores N events straight into the store (under the log name ``prefill``,
dated back over the previous days, so the soak source's own offsets are untouched): simulated
records parsed once, doubled inside ClickHouse to N/32 distinct events, then the table's parts
doubled five times more by hard links (each event stored 32 times), which is how a 10M-event
store is made in a minute or two instead of hours of ingest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from hubsight.detect.windows import ENTRY_BYTES
from hubsight.devbroker import LocalBroker
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.service import SOCKET_FILE
from hubsight.simulate import SCENARIOS, generate_messages, stream_messages
from hubsight.sources.base import Message
from hubsight.sources.config import make_source
from hubsight.store import retention
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.base import EventStore
from hubsight.store.catalog import Catalog

TOPIC = "insights-operational-logs"
_NOW = datetime.now(UTC)
SOURCE = "soak"
WALS = ("hubsight.sqlite3-wal", "detect.sqlite3-wal")
# Messages parsed for --prefill (about 38 events each); the rest are copies made by ClickHouse.
SEED_MESSAGES = 1_000
# Events per write of the seed: about a collector's batch (one INSERT of 50,000 events held
# 1.3 GB in the engine).
SEED_BATCH = 10_000
# Copy c of the seed is dated c hours back, its offsets c * OFFSET_STRIDE on (the seed's offsets
# are its message numbers, below SEED_MESSAGES).
OFFSET_STRIDE = 1_000_000
# The last doublings of --prefill copy the table's parts (hard links) instead of its rows:
# copying rows inside the engine ran at ~4,700 events/s (the projections and the full-text
# index are built for each), so 10M took ~36 minutes; linking parts takes seconds.
LINKED_DOUBLINGS = 5
# What a baseline costs (tracemalloc over 100,000 simulated events, 18,320 baselines; README,
# "Memory"); a window entry with its window costs the engine's own figure (``ENTRY_BYTES``).
BASELINE_BYTES = 1_700
_MB = 1 << 20


def _prefill(data_dir: Path, events: int) -> None:
    """Store ``events`` events under the log name ``prefill`` before the service starts.

    A seed of simulated messages is parsed once; then the store doubles itself inside ClickHouse
    (log2(events / seed) INSERT ... SELECTs instead of one per copy of the seed), each copy
    dated further back and at offsets of its own.
    """
    started = time.monotonic()
    parser = MessageParser(log_name="prefill", registry=default_registry())
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        # The TTL the service gives the table at its start, given now: given to a full table
        # it is applied to every part, which held `run` ~5 minutes at up to 2 GB over 10M
        # events before it stored anything (a store filled by the service has it from the start).
        retention.apply(store, Catalog(data_dir).retention())
        batch: list[Event] = []
        stored = 0
        shift: timedelta | None = None
        for offset, body in enumerate(generate_messages(SEED_MESSAGES, records_per_message=50)):
            message = Message(
                topic="prefill", partition=0, offset=offset, value=body, received_time=_NOW
            )
            for event in parser.parse(message):
                # The seed is simulated in January 2026: moved to start a day ago, within the
                # retention (stored past it, the TTL dropped the whole prefill).
                if shift is None:
                    shift = _NOW - timedelta(days=1) - event.timestamp
                event.timestamp += shift
                batch.append(event)
            if len(batch) >= SEED_BATCH or stored + len(batch) >= events:
                batch = batch[: events - stored]
                store.write(batch)
                stored += len(batch)
                batch = []
                if stored >= events:
                    break
        if batch:
            store.write(batch)
            stored += len(batch)
        seed, copies = stored, 1
        print(f"seed: {seed:,} events in {time.monotonic() - started:.0f} s", flush=True)
        # Distinct events up to this; the linked doublings make 2**LINKED_DOUBLINGS times it.
        distinct = max(events >> LINKED_DOUBLINGS, min(seed, events))
        while stored < distinct:
            # The rows stored so far are copies 0 .. copies-1; these become copies .. 2*copies-1.
            rows = min(stored, distinct - stored)
            store.execute(
                "INSERT INTO events SELECT * REPLACE ("  # noqa: S608 - integers only
                f"timestamp - toIntervalHour({copies:d}) AS timestamp, "
                f"source_offset + {copies * OFFSET_STRIDE:d} AS source_offset) "
                # Limited inside: outside, the aliases above would stand for the columns.
                f"FROM (SELECT * FROM events WHERE log_name = 'prefill' LIMIT {rows:d}) "
                # One thread and parts of at most 64 MB keep a copy of millions of rows well
                # under the engine's memory cap.
                "SETTINGS max_threads = 1, max_insert_threads = 1, "
                "min_insert_block_size_bytes = 67108864"
            )
            stored += rows
            copies *= 2
            print(f"  {stored:,} events at {time.monotonic() - started:.0f} s", flush=True)
        if stored < events:
            stored = _link_doublings(store, stored, events)
            print(f"  {stored:,} events at {time.monotonic() - started:.0f} s", flush=True)
        (row,) = store.select("SELECT count() AS n FROM events")
    finally:
        store.close()
    print(
        f"prefilled {int(row['n']):,} events in {time.monotonic() - started:.0f} s "
        f"(load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def _link_doublings(store: EventStore, stored: int, events: int) -> int:
    """Double the events table by copying its parts until ``events``; the events then stored.

    One part first (merging the distinct events is cheap), so the table ends with
    2**LINKED_DOUBLINGS parts for the service's merges instead of that many times the seed's.
    """
    store.execute("OPTIMIZE TABLE events FINAL")
    store.execute("CREATE TABLE prefill_copy AS events")
    try:
        while stored * 2 <= events:
            # ATTACH PARTITION ... FROM links the source's parts into the target: no rows read.
            store.execute("ALTER TABLE prefill_copy ATTACH PARTITION ID 'all' FROM events")
            store.execute("ALTER TABLE events ATTACH PARTITION ID 'all' FROM prefill_copy")
            store.execute("TRUNCATE TABLE prefill_copy")
            stored *= 2
    finally:
        store.execute("DROP TABLE prefill_copy SYNC")
    if stored < events:
        # The remainder (under the distinct events' count) as rows.
        store.execute(
            "INSERT INTO events SELECT * FROM events "  # noqa: S608 - integers only
            f"WHERE log_name = 'prefill' LIMIT {events - stored:d}"
        )
    return events


def _feed(bootstrap: str, rate: float, users: int, stop: threading.Event, fed: list[int]) -> None:
    """Produce the simulated tenant until ``stop``; ``fed[0]`` counts the records sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for body in stream_messages(seed=17, rate=rate, scenarios=SCENARIOS, users=users):
        if stop.is_set():
            break
        producer.produce(TOPIC, body)
        producer.poll(0)
        # The planted scenarios come on top of ``rate`` (about 1.7 times it in all).
        fed[0] += len(json.loads(body)["records"])
    producer.flush(10)


def _status(pid: int) -> dict[str, float]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            fields[key] = int(value.split()[0])
    # utime and stime, the 14th and 15th fields (the name in brackets may hold spaces).
    ticks = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[11:13]
    return {
        "cpu_s": sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK"),
        "rss_mb": fields["VmRSS"] // 1024,
        # The heap, and pages mapped from files: mostly the engine's library, the pages of it
        # used since the service last released them (once a minute, mapped.py).
        "anon_mb": fields["RssAnon"] // 1024,
        "file_mb": fields["RssFile"] // 1024,
        "threads": fields["Threads"],
        "files": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _scrape(path: Path) -> dict[tuple[str, str], float]:
    """The service's /metrics over its owner's socket: value by (name, first label's value)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: soak\r\n\r\n")
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    body = b"".join(chunks).partition(b"\r\n\r\n")[2].decode()
    return {
        (sample.name, next(iter(sample.labels.values()), "")): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _heap(data_dir: Path, anon_mb: float) -> dict[str, float]:
    """The heap split by part (README, "Memory"); zeros when the scrape failed."""
    try:
        m = _scrape(data_dir / SOCKET_FILE)
    except OSError as exc:
        print(f"/metrics not read: {exc}", flush=True)
        m = {}
    eng_res = m.get(("hubsight_engine_memory_bytes", "resident"), 0.0) / _MB
    caches = sum(v for (name, _), v in m.items() if name == "hubsight_engine_cache_bytes")
    entries = m.get(("hubsight_detection_window_entries", ""), 0.0)
    state = (
        entries * ENTRY_BYTES + m.get(("hubsight_detection_baselines", ""), 0.0) * BASELINE_BYTES
    )
    return {
        "eng_res": round(eng_res),
        "eng_alloc": round(m.get(("hubsight_engine_memory_bytes", "allocated"), 0.0) / _MB),
        "caches": round(caches / _MB),
        "other": round(anon_mb - eng_res),
        "malloc": round(m.get(("hubsight_malloc_bytes", "in_use"), 0.0) / _MB),
        "entries": int(entries),
        "state_est": round(state / _MB),
    }


def _sample(pid: int, data_dir: Path, started: float) -> dict[str, float]:
    minute = round((time.monotonic() - started) / 60, 1)
    sample: dict[str, float] = {**_status(pid), "minute": minute}
    sample.update(_heap(data_dir, sample["anon_mb"]))
    for wal in WALS:
        path = data_dir / wal
        sample[wal] = path.stat().st_size // 1024 if path.exists() else 0
    health = Catalog(data_dir).load_health().get(SOURCE)
    sample["stored"] = int(health[0]["events_stored"]) if health else 0
    return sample


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--minutes", type=float, default=30.0)
    args.add_argument(
        "--rate",
        type=float,
        # ~520 records/s in all: what the service stored at load 1-7 on the shared 2-core
        # machine (500, ~870 in all, left it a backlog at load 6-10; README, "Memory").
        default=300.0,
        help="background records per second (the planted scenarios add ~70%%)",
    )
    args.add_argument("--users", type=int, default=1000)
    args.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    args.add_argument("--prefill", type=int, default=0, help="events stored before the run")
    args.add_argument(
        "--window-cap", type=int, help="max_window_entries in detect.toml (its default if none)"
    )
    opts = args.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        data_dir = Path(tmp) / "data"
        if opts.prefill:
            _prefill(data_dir, opts.prefill)
        if opts.window_cap is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "detect.toml").write_text(f"max_window_entries = {opts.window_cap:d}\n")
        # Kept in a name: a collected AdminClient cancels its pending request.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 4)])[TOPIC].result(timeout=30)
        Catalog(data_dir).add(
            make_source(
                {
                    "name": SOURCE,
                    "profile": {"kind": "kafka", "bootstrap": broker.bootstrap},
                    "topics": [TOPIC],
                    "keep_unparsed": True,
                }
            )
        )
        run = subprocess.Popen(
            [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        fed = [0]
        feeder = threading.Thread(
            target=_feed,
            args=(broker.bootstrap, opts.rate, opts.users, stop, fed),
            daemon=True,
        )
        feeder.start()
        started = time.monotonic()
        samples: list[dict[str, float]] = []
        header = [
            *("minute", "rss_mb", "anon_mb", "file_mb", "eng_res", "eng_alloc", "caches"),
            *("other", "malloc", "entries", "state_est", "files", "threads", *WALS),
            *("stored", "fed/s", "stored/s", "cpu%", "us/event", "load"),
        ]
        print(
            f"state_est: the detection state in MB estimated from its counts, not measured "
            f"({ENTRY_BYTES} bytes an entry with its window, {BASELINE_BYTES:,} a baseline)"
        )
        print("  ".join(f"{h:>20}" if "wal" in h else f"{h:>8}" for h in header))
        try:
            while time.monotonic() - started < opts.minutes * 60:
                time.sleep(opts.interval)
                sample = _sample(run.pid, data_dir, started)
                # Stored against fed: a service behind its feed holds a backlog all along.
                sample["fed"] = fed[0]
                before = samples[-1] if samples else {"minute": 0.0, "stored": 0, "fed": 0}
                before.setdefault("cpu_s", 0.0)
                seconds = max(1.0, (sample["minute"] - before["minute"]) * 60)
                stored = sample["stored"] - before["stored"]
                sample["fed/s"] = round((sample["fed"] - before["fed"]) / seconds)
                sample["stored/s"] = round(stored / seconds)
                # The service's CPU: its share of a core, and CPU time per event stored (what
                # the shared machine's load does not change much).
                used = sample["cpu_s"] - before["cpu_s"]
                sample["cpu%"] = round(100 * used / seconds)
                sample["us/event"] = round(1e6 * used / stored) if stored else 0
                sample["load"] = round(os.getloadavg()[0], 1)
                samples.append(sample)
                print(
                    "  ".join(
                        f"{sample[h]:>20}" if "wal" in h else f"{sample[h]:>8}" for h in header
                    ),
                    flush=True,
                )
        finally:
            stop.set()
            feeder.join(timeout=30)
            run.send_signal(signal.SIGTERM)
            try:
                # It stores what it read first: a backlog on a loaded machine takes minutes.
                run.wait(timeout=300)
            except subprocess.TimeoutExpired:
                print("hubsight run did not stop within 300 s of SIGTERM: killed", flush=True)
                run.kill()
                run.wait()
        warm = samples[len(samples) // 3] if samples else None
        last = samples[-1] if samples else None
        if warm and last:
            steady = samples[len(samples) // 3 :]
            for key in ("rss_mb", "anon_mb", "eng_res", "other", "state_est"):
                values = [v[key] for v in steady]
                print(
                    f"{key} from minute {warm['minute']}: least {min(values):,.0f}, "
                    f"mean {sum(values) / len(values):,.0f}, most {max(values):,.0f} "
                    f"({len(values)} samples)"
                )
            seconds = last["minute"] * 60
            grew = {k: last[k] - warm[k] for k in ("rss_mb", "anon_mb", "files", "threads")}
            print(
                f"after warm-up (minute {warm['minute']} -> {last['minute']}): "
                f"RSS {grew['rss_mb']:+.0f} MB (heap {grew['anon_mb']:+.0f}), "
                f"files {grew['files']:+.0f}, "
                f"threads {grew['threads']:+.0f}; {last['stored']:,.0f} events stored "
                f"({last['stored'] / seconds:.0f}/s) of {last['fed']:,.0f} records fed "
                f"({last['fed'] / seconds:.0f}/s), load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
