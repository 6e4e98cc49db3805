"""Detection benchmark: events/s through every enabled rule, and the store -> alert delay.

Generates a tenant with the simulator (every scenario planted), parses it as the collector does,
and feeds the events in arrival order, in collector-sized batches, to a persisted engine; only
the time spent in the engine (``process`` for every batch, and ``close``, which saves the
baselines still unsaved) counts towards events/s. The delay from "batch stored" to "its alerts
exist" is the time ``process`` takes for the batch (it commits the alerts before returning).
Runs the same events twice, side by side: the built-in rules only, then everything (built-in
rules, the shipped Sigma content and the Sigma rules of ``--sigma-dir``); then, with timers on
every rule, the cost per rule of the most expensive ones. Also prints which planted scenarios
were detected and the alerts per rule per day per 1,000 users on background traffic (the noise
budget): alerts citing no record of a planted scenario. ``--warmup-hours`` first simulates that
much background alone, which is the engine's learning period: a deployment learns for days before
its baseline rules speak, so the noise is counted after the warm-up, where rules that flag what is
new for a workload would otherwise report the tenant's whole routine as new. The machine's load
average is printed with the figures.

    .venv/bin/python bench/detect.py                       # 200 users, 6 hours
    .venv/bin/python bench/detect.py --users 1000 --days 7 --rate 3.4 \
        --sigma-dir /work/ext/sigmahq-azure/rules/cloud/azure        # the acceptance run
    .venv/bin/python bench/detect.py --users 1000 --days 1 --hours 0 --rate 3.4 \
        --warmup-hours 30 --costs 0                                  # the noise budget
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Finding, Rule, RuleContext
from hubsight.detect.coverage import score
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions, tune_gc
from hubsight.detect.rules import BUILTIN_RULES
from hubsight.detect.ruleset import build_ruleset, rule_classes
from hubsight.detect.settings import DetectConfig
from hubsight.detect.sigma import load_sigma_rules
from hubsight.detect.sigma.condition import Condition, Opaque, Predicate
from hubsight.detect.sigma.index import Indexed
from hubsight.detect.sigma.matcher import compile_each
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def warmup(args: argparse.Namespace) -> timedelta:
    """Background alone before ``START``: the engine learns, and no noise is counted."""
    return timedelta(hours=args.warmup_hours)


def measured(args: argparse.Namespace) -> timedelta:
    """The simulated time from ``START`` on: scenarios planted, noise counted."""
    return timedelta(days=args.days, hours=args.hours)


def batches(args: argparse.Namespace, truth: list[dict[str, Any]]) -> Iterator[list[Event]]:
    """Simulated messages parsed into collector-sized batches (whole messages), streamed."""
    config = SimulationConfig(
        seed=args.seed,
        rate=args.rate,
        users=args.users,
        scenarios=tuple(SCENARIOS) * args.repeat,
        start=START - warmup(args),
        duration=warmup(args) + measured(args),
        quiet=warmup(args),
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    batch: list[Event] = []
    for sim in Simulation(config, truth=truth.append).messages():
        batch.extend(parser.parse(sim.as_message()))
        if len(batch) >= args.batch:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(slots=True)
class Run:
    """What one pass over the events measured."""

    rules: int
    events: int = 0
    batches: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0
    delays: list[float] = field(default_factory=list)
    final: dict[str, Alert] = field(default_factory=dict)
    truth: list[dict[str, Any]] = field(default_factory=list)
    too_late: int = 0
    rule_errors: dict[str, int] = field(default_factory=dict)
    # How often the windows went past their cap and were cut, and the most entries they held.
    window_cuts: int = 0
    peak_entries: int = 0


def run(args: argparse.Namespace, rules: list[Rule[Any]]) -> Run:
    """Feed the simulated tenant to a persisted engine running ``rules``; time the engine only."""
    result = Run(rules=len(rules))
    with tempfile.TemporaryDirectory() as tmp:
        learning = max(timedelta(hours=args.learning_hours), warmup(args))
        options = EngineOptions(learning=learning)
        engine = DetectionEngine(DetectDB(Path(tmp) / "detect.sqlite3"), rules, options=options)
        for batch in batches(args, result.truth):
            t0, c0 = time.perf_counter(), time.process_time()
            changed = engine.process(batch)
            delay = time.perf_counter() - t0
            result.elapsed += delay
            result.cpu += time.process_time() - c0
            result.events += len(batch)
            result.batches += 1
            result.peak_entries = max(result.peak_entries, engine.state_size().entries)
            result.delays.extend(delay for _ in changed)
            for alert in changed:
                result.final[alert.id] = alert
            for gone in engine.withdrawn:
                result.final.pop(gone, None)
        # Closing saves the baselines changed since the last periodic save: engine work too.
        t0, c0 = time.perf_counter(), time.process_time()
        engine.close()
        result.elapsed += time.perf_counter() - t0
        result.cpu += time.process_time() - c0
        result.too_late = engine.stats.too_late
        result.rule_errors = engine.stats.rule_errors
        result.window_cuts = engine.stats.window_cuts
    return result


Evaluate = Callable[[Any, RuleContext], Iterable[Finding]]


def timed(
    rules: list[Rule[Any]], costs: defaultdict[str, float], tested: defaultdict[str, int]
) -> None:
    """Make each rule's ``evaluate`` add its time (findings included) to ``costs``.

    Single-event Sigma rules are first tested by their kind's matcher (``sigma.index``), which
    the engine runs before evaluating the ones that match: their predicates are timed too, and
    counted in ``tested`` (how many events each rule's predicate was run on: what the matcher's
    index and the engine's dispatch by kind left to test).
    """
    for rule in rules:
        condition = rule.condition if isinstance(rule, Indexed) else None
        if condition is not None:
            # Compiled alone, as the index runs a candidate's condition.
            [alone] = compile_each([condition])

            def predicate(record: Any, _inner: Predicate = alone, _id: str = rule.meta.id) -> bool:
                t0 = time.perf_counter()
                holds = _inner(record)
                costs[_id] += time.perf_counter() - t0
                tested[_id] += 1
                return holds

            def timed_condition(_: object, timed: Predicate = predicate) -> Condition:
                return Opaque(timed)

            # Every loaded rule has a class of its own: the property is the rule's alone. The
            # kind's matcher calls the timed predicate instead of compiling the rule's condition.
            setattr(type(rule), "condition", property(timed_condition))  # noqa: B010

        def evaluate(
            event: Any, ctx: RuleContext, _inner: Evaluate = rule.evaluate, _id: str = rule.meta.id
        ) -> list[Finding]:
            t0 = time.perf_counter()
            found = list(_inner(event, ctx))
            costs[_id] += time.perf_counter() - t0
            return found

        # The engine looks ``evaluate`` up on the instance when it builds its dispatch table.
        setattr(rule, "evaluate", evaluate)  # noqa: B010 - an instance attribute on purpose


def ruleset(args: argparse.Namespace, *, everything: bool) -> list[Rule[Any]]:
    """The built-in rules only, or everything: built-ins, shipped content, ``--sigma-dir``."""
    if not everything:
        return build_ruleset(DetectConfig(), {}, only={c.meta.id for c in BUILTIN_RULES}).rules
    extra: list[Rule[Any]] = []
    if args.sigma_dir is not None:
        extra = [load.rule for load in load_sigma_rules(args.sigma_dir) if load.rule is not None]
    return build_ruleset(DetectConfig(), {}, extra=extra).rules


def _p99(delays: list[float]) -> float:
    return statistics.quantiles(delays, n=100)[98] if len(delays) > 1 else sum(delays)


def _load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def report(args: argparse.Namespace, runs: dict[str, Run]) -> None:
    """Print the runs side by side, then the scenarios and the noise of the last one."""
    names = list(runs)
    rows: list[tuple[str, list[str]]] = [
        ("rules enabled", [f"{r.rules}" for r in runs.values()]),
        ("events", [f"{r.events:,}" for r in runs.values()]),
        ("events/s (wall, engine only)", [f"{r.events / r.elapsed:,.0f}" for r in runs.values()]),
        ("events per CPU second", [f"{r.events / r.cpu:,.0f}" for r in runs.values()]),
        (
            "store -> alert p50 / p99 ms",
            [
                f"{statistics.median(r.delays) * 1000:.0f} / {_p99(r.delays) * 1000:.0f}"
                if r.delays
                else "-"
                for r in runs.values()
            ],
        ),
        ("alerts + notables", [f"{len(r.final):,}" for r in runs.values()]),
        (
            "too late / rule errors",
            [f"{r.too_late} / {sum(r.rule_errors.values())}" for r in runs.values()],
        ),
        (
            "window cuts / peak entries",
            [f"{r.window_cuts} / {r.peak_entries:,}" for r in runs.values()],
        ),
    ]
    print(f"{'':32}" + "".join(f"{n:>16}" for n in names))
    for label, values in rows:
        print(f"{label:32}" + "".join(f"{v:>16}" for v in values))
    last = runs[names[-1]]
    if last.rule_errors:
        print(f"rule errors: {last.rule_errors}")
    coverage = score(last.final.values(), last.truth)
    print(
        f"scenarios ({names[-1]}): {len(coverage.detected)} expectations detected, "
        f"{len(coverage.missed)} missed, {len(coverage.unmapped)} naming unknown rules"
    )
    for scenario, expect in coverage.missed:
        print(f"  MISSED {scenario}: {expect}")
    for scenario, expect in coverage.unmapped:
        print(f"  {scenario} expects {expect}, which is not a shipped rule")
    noise(args, last.final.values(), last.truth)


def noise(args: argparse.Namespace, final: Iterable[Alert], truth: list[dict[str, Any]]) -> None:
    """Alerts and notables per rule per day per 1,000 users on background traffic.

    The budget (issue 13) is one alert per rule per day per 1,000 users; notables go on a
    user's timeline and into later alerts, never alone, so they are listed but not held to it,
    and rules louder by design (``RuleMeta.loud``) say why in their description. Alerts of the
    warm-up are the learning period's and are not counted.
    """
    days = measured(args) / timedelta(days=1)
    scale = days * args.users / 1000
    final = [a for a in final if a.first_event_time >= START]
    notables = {a.rule_id for a in final if a.notable}
    loud = {cls.meta.id for cls in rule_classes() if cls.meta.loud}
    print(
        f"background traffic, per rule per day per 1,000 users ({days:g} days after "
        f"{args.warmup_hours:g} h of warm-up, {args.users} users; budget: 1 alert):"
    )
    for rule_id, count in score(final, truth).background.most_common():
        rate = count / scale
        mark = (
            "notable"
            if rule_id in notables
            else "loud (its description says why)"
            if rule_id in loud
            else "OVER"
            if rate > 1
            else ""
        )
        print(f"  {rule_id:48} {rate:8.2f}   ({count} in all) {mark}")


def tenant_args(ap: argparse.ArgumentParser) -> None:
    """The simulated tenant's options and the rules' (``--sigma-dir``), shared with
    ``bench/cases.py``."""
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--days", type=int, default=0)
    ap.add_argument("--hours", type=float, default=6)
    ap.add_argument("--rate", type=float, default=20.0, help="records/s of simulated time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="plant every scenario this many times")
    ap.add_argument("--batch", type=int, default=1000, help="events per collector batch")
    ap.add_argument("--learning-hours", type=float, default=0.25)
    ap.add_argument(
        "--warmup-hours",
        type=float,
        default=0,
        help="simulate this much background alone first, as the learning period (at least "
        "--learning-hours); noise is counted after it",
    )
    ap.add_argument(
        "--sigma-dir",
        type=Path,
        help="a folder of extra Sigma rules, e.g. SigmaHQ's rules/cloud/azure fetched outside "
        "this repository",
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tenant_args(ap)
    ap.add_argument(
        "--costs", type=int, default=10, help="print this many most expensive rules (0: no pass)"
    )
    args = ap.parse_args()

    # As in ``hubsight run`` and ``detect --replay`` (open_engine does it there).
    tune_gc()
    print(f"start: {_load()}")
    began = time.perf_counter()
    runs = {
        "built-in": run(args, ruleset(args, everything=False)),
        "everything": run(args, ruleset(args, everything=True)),
    }
    print(f"simulated, parsed and detected twice in {time.perf_counter() - began:.0f} s; {_load()}")
    report(args, runs)
    if args.costs:
        costs: defaultdict[str, float] = defaultdict(float)  # seconds per rule
        tested: defaultdict[str, int] = defaultdict(int)  # events per Sigma predicate
        rules = ruleset(args, everything=True)
        timed(rules, costs, tested)
        measured = run(args, rules)
        total = sum(costs.values())
        print(
            f"single-event Sigma predicates run: {sum(tested.values()) / measured.events:.2f} "
            f"per event ({sum(tested.values()):,} on {measured.events:,} events, "
            f"{len(tested)} rules)"
        )
        print(
            f"cost per rule (a third pass with timers; rules' evaluate and Sigma predicates take "
            f"{total:.1f} s of {measured.elapsed:.1f} s in the engine), the {args.costs} most "
            "expensive:"
        )
        for rule_id, seconds in sorted(costs.items(), key=lambda kv: -kv[1])[: args.costs]:
            per_event = seconds / measured.events * 1e6
            print(f"  {rule_id:60} {seconds:7.2f} s  {per_event:6.2f} us/event")
    print(f"end: {_load()}")


if __name__ == "__main__":
    main()
