"""Detection benchmark: events/s through every enabled rule, and the store -> alert delay.

Generates a tenant with the simulator (every scenario planted), parses it as the collector does,
and feeds the events in arrival order, in collector-sized batches, to a persisted engine; only
the time spent in the engine (``process`` for every batch, and ``close``, which saves the
baselines still unsaved) counts towards events/s. The delay from "batch stored" to "its alerts
exist" is the time ``process`` takes for the batch (it commits the alerts before returning).
Also prints which planted scenarios were detected and how many alerts fired on background
traffic, per rule.

    .venv/bin/python bench/detect.py                       # 200 users, 6 hours
    .venv/bin/python bench/detect.py --users 1000 --days 7 --rate 3.4   # the acceptance run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.coverage import score
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions, tune_gc
from hubsight.detect.ruleset import build_ruleset
from hubsight.detect.settings import DetectConfig
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig
from hubsight.sources.base import Message

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def batches(args: argparse.Namespace, truth: list[dict[str, Any]]) -> Iterator[list[Event]]:
    """Simulated messages parsed into collector-sized batches (whole messages), streamed."""
    config = SimulationConfig(
        seed=args.seed,
        rate=args.rate,
        users=args.users,
        scenarios=tuple(SCENARIOS) * args.repeat,
        start=START,
        duration=timedelta(hours=args.hours) + timedelta(days=args.days),
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    batch: list[Event] = []
    for sim in Simulation(config, truth=truth.append).messages():
        message = Message(
            topic="sim",
            partition=0,
            offset=sim.sequence,
            value=sim.body,
            received_time=sim.enqueued_time,
            enqueued_time=sim.enqueued_time,
        )
        batch.extend(parser.parse(message))
        if len(batch) >= args.batch:
            yield batch
            batch = []
    if batch:
        yield batch


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--days", type=int, default=0)
    ap.add_argument("--hours", type=float, default=6)
    ap.add_argument("--rate", type=float, default=20.0, help="records/s of simulated time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="plant every scenario this many times")
    ap.add_argument("--batch", type=int, default=1000, help="events per collector batch")
    ap.add_argument("--learning-hours", type=float, default=0.25)
    args = ap.parse_args()

    truth: list[dict[str, Any]] = []
    total = 0
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        # As in ``hubsight run`` and ``detect --replay`` (open_engine does it there).
        tune_gc()
        ruleset = build_ruleset(DetectConfig(), {})
        options = EngineOptions(learning=timedelta(hours=args.learning_hours))
        db = DetectDB(Path(tmp) / "detect.sqlite3")
        engine = DetectionEngine(db, ruleset.rules, options=options)
        final: dict[str, Alert] = {}
        delays: list[float] = []
        elapsed = cpu = 0.0
        began = time.perf_counter()
        for batch in batches(args, truth):
            t0, c0 = time.perf_counter(), time.process_time()
            changed = engine.process(batch)
            delay = time.perf_counter() - t0
            elapsed += delay
            cpu += time.process_time() - c0
            total += len(batch)
            count += 1
            delays.extend(delay for _ in changed)
            for alert in changed:
                final[alert.id] = alert
        # Closing saves the baselines changed since the last periodic save: engine work too.
        t0, c0 = time.perf_counter(), time.process_time()
        engine.close()
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        wall = time.perf_counter() - began

    print(f"simulated, parsed and detected {total:,} events in {wall:.1f} s")
    print(f"rules enabled: {len(ruleset.rules)}; batches: {count} of ~{args.batch} events")
    print(
        f"detection: {total / elapsed:,.0f} events/s wall ({elapsed:.2f} s for {total:,} events), "
        f"{total / cpu:,.0f} events per CPU second"
    )
    if delays:
        p99 = statistics.quantiles(delays, n=100)[98] if len(delays) > 1 else delays[0]
        print(
            f"store -> alert delay: p50 {statistics.median(delays) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms over {len(delays)} alert updates"
        )
    print(
        f"too late (beyond lateness): {engine.stats.too_late}; rule errors: "
        f"{engine.stats.rule_errors or 'none'}"
    )
    coverage = score(final.values(), truth)
    print(
        f"scenarios: {len(coverage.detected)} expectations detected, "
        f"{len(coverage.missed)} missed, {len(coverage.unmapped)} naming unknown rules"
    )
    for scenario, expect in coverage.missed:
        print(f"  MISSED {scenario}: {expect}")
    for scenario, expect in coverage.unmapped:
        print(f"  {scenario} expects {expect}, which is not a shipped rule")
    alerts = [a for a in final.values() if not a.notable]
    print(f"alerts: {len(alerts)}, notables: {len(final) - len(alerts)}")
    print("alerts and notables on background traffic, per rule:")
    for rule_id, count in coverage.background.most_common():
        print(f"  {rule_id:40} {count}")


if __name__ == "__main__":
    main()
