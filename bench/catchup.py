"""Detection's catch-up: how long reading back what it did not process takes over a large store.

Fills a store to ``--size`` events as ``bench/search.py`` does (received before detection began
keeping its place, so none of them is read again), then stores ``--behind`` events of a
simulated tenant, received now, in collector-sized batches, as if detection had died before
processing them. Prints, for a Detection over every shipped rule: an empty catch-up (nothing
beyond the position: the cost a catch-up pays whatever it reads, a scan of the log's received
times), then the catch-up of the events behind (wall and process CPU, events per second). The
machine's load average is printed with the figures: the machine is shared.

    .venv/bin/python bench/catchup.py --size 1000000 --behind 3000 50000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The repository root: this script imports its sibling as ``bench.search``, as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hubsight.detect.runtime import Detection
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import Simulation, SimulationConfig
from hubsight.sources.base import Message
from hubsight.store.embedded import EmbeddedStore

from bench.search import fill, merges_stopped

LOG_NAME = "Azure Event Hub"  # the filled events' (``search.fill``)
BATCH = 3_000  # about a collector's batch of 16 MB of sign-ins


def store_behind(store: EmbeddedStore, events: int, first_offset: int) -> int:
    """Store ``events`` simulated events received now, in batches; the next offset."""
    parser = MessageParser(log_name=LOG_NAME, registry=default_registry())
    config = SimulationConfig(
        seed=11,
        rate=20,
        users=200,
        start=(datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0),
        duration=timedelta(hours=2),
    )
    batch: list[Event] = []
    offset, stored = first_offset, 0
    for message in Simulation(config).messages():
        received = datetime.now(UTC)
        parsed = parser.parse(
            Message(topic="behind", partition=0, offset=offset, value=message.body,
                    received_time=received)
        )  # fmt: skip
        offset += 1
        batch += parsed[: events - stored - len(batch)]
        if len(batch) >= BATCH or stored + len(batch) >= events:
            store.write(batch)
            stored += len(batch)
            batch = []
        if stored >= events:
            break
    return offset


def catch_up(detection: Detection) -> tuple[float, float, int]:
    """One catch-up from the position: wall seconds, process CPU seconds, events read."""
    detection.behind = True
    wall, cpu = time.perf_counter(), time.process_time()
    detection.on_stored([])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = detection.last_catch_up
    assert done is not None
    return wall, cpu, done.events


def main() -> None:
    """Fill, store the events behind, time the catch-ups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--behind", type=int, nargs="+", default=[3_000, 50_000])
    parser.add_argument("--pool-messages", type=int, default=1600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hubsight-catchup-") as tmp:
        data_dir = Path(tmp)
        store = EmbeddedStore(data_dir)
        try:
            seconds = fill(store, args.pool_messages, args.size)
            print(f"filled {args.size:,} events in {seconds:.0f} s", flush=True)
            (data_dir / "detect.toml").write_text("learning_days = 0\n")
            detection = Detection.open(data_dir, store=store, sources=lambda: [LOG_NAME])
            # The store is read as filled, with nothing merging beside the catch-ups: the
            # process CPU counts ClickHouse's threads (``fill`` leaves merges running).
            with merges_stopped(store):
                try:
                    wall, cpu, read = catch_up(detection)
                    print(
                        f"empty catch-up over {args.size:,} stored events: {wall * 1000:.0f} ms "
                        f"wall, {cpu * 1000:.0f} ms CPU, {read} read; load {os.getloadavg()}",
                        flush=True,
                    )
                    offset = 0
                    for behind in args.behind:
                        offset = store_behind(store, behind, offset)
                        wall, cpu, read = catch_up(detection)
                        print(
                            f"catch-up of {read:,} events behind: {wall:.2f} s wall, {cpu:.2f} s "
                            f"CPU, {read / wall:,.0f} events/s wall, {read / max(cpu, 1e-9):,.0f} "
                            f"per CPU second; load {os.getloadavg()}",
                            flush=True,
                        )
                finally:
                    detection.close()
        finally:
            store.close()


if __name__ == "__main__":
    main()
