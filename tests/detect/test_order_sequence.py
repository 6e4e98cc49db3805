"""Sequence rules (a success after lead-up failures) cite the same successes in any order.

The oracle is the definition itself: a success is cited when at least ``count`` failures fall
in the ``window_minutes`` up to it and it does not continue an earlier success (one at most
five minutes before, with no failure between); citations within the dedup window of each other
are one alert, keyed by the dedup bucket of its first event.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert
from hubsight.detect.base import EventRef
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess, BruteForceSuccessConfig
from hubsight.detect.rules.signals import SUCCESS, signin
from hubsight.parsing.event import Event

FAILED = "FAILED_BAD_PASSWORD"
CONFIG = BruteForceSuccessConfig(count=3, window_minutes=10, dedup_minutes=15)


def _events(spec: Sequence[tuple[float, str]]) -> list[Event]:
    events = [signin(minute, result=result) for minute, result in spec]
    for offset, event in enumerate(events):
        event.source_offset = offset
    return events


def _deliver(batches: Sequence[Sequence[Event]], path: Path | None = None) -> dict[str, Alert]:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    options = EngineOptions(learning=timedelta(0), persist=path is not None)
    final: dict[str, Alert] = {}
    engine = DetectionEngine(db, [BruteForceSuccess(CONFIG)], options=options)
    for number, batch in enumerate(batches):
        if path is not None and number == len(batches) // 2:
            engine.close()
            engine = DetectionEngine(
                DetectDB(path / "detect.sqlite3"), [BruteForceSuccess(CONFIG)], options=options
            )
        final.update((a.dedup_key, a) for a in engine.process(batch))
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final


def _view(alerts: dict[str, Alert]) -> dict[str, tuple[Any, ...]]:
    return {
        k: (a.first_event_time, a.last_event_time, tuple(a.evidence)) for k, a in alerts.items()
    }


def _definition(events: Sequence[Event]) -> dict[int, set[EventRef]]:
    """Evidence per dedup bucket, straight from the definition."""
    failures = [e.timestamp.timestamp() for e in events if e.result == FAILED]
    successes = sorted(e.timestamp.timestamp() for e in events if e.result == SUCCESS)
    window, count = CONFIG.window_minutes * 60.0, CONFIG.count
    cited: list[set[EventRef]] = []
    for event in events:
        if event.result != SUCCESS:
            continue
        ts = event.timestamp.timestamp()
        leadup = [
            e for e in events if e.result == FAILED and ts - window <= e.timestamp.timestamp() <= ts
        ]
        earlier = [s for s in successes if ts - 300 <= s < ts]
        continues = bool(earlier) and not any(earlier[-1] <= f <= ts for f in failures)
        if len(leadup) >= count and not continues:
            cited.append({EventRef.of(e) for e in leadup} | {EventRef.of(event)})
    # Citations within the dedup window of each other are one alert, keyed by the bucket its
    # first event falls in.
    width = CONFIG.dedup_minutes * 60.0
    alerts: list[set[EventRef]] = []
    for refs in sorted(cited, key=min):
        first = min(refs).timestamp.timestamp()
        if alerts and first - max(alerts[-1]).timestamp.timestamp() <= width:
            alerts[-1] |= refs
        else:
            alerts.append(set(refs))
    return {int(min(refs).timestamp.timestamp() // width): refs for refs in alerts}


def _random_case(rng: random.Random) -> list[Event]:
    spec: list[tuple[float, str]] = []
    clock = 0.0
    for _ in range(rng.randint(2, 6)):
        clock += rng.uniform(1, 25)
        # Bursts of failures, and successes alone or a few minutes apart.
        for _ in range(rng.randint(0, 5)):
            spec.append((round(clock + rng.uniform(0, 6), 3), FAILED))
        for _ in range(rng.randint(1, 3)):
            spec.append((round(clock + rng.uniform(0, 9), 3), SUCCESS))
    return _events(spec)


@pytest.mark.parametrize("seed", range(60))
def test_any_arrival_order_cites_what_the_definition_says(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_case(rng)
    in_order = _deliver([[e] for e in sorted(events, key=lambda e: e.timestamp)])
    shuffled = events[:]
    rng.shuffle(shuffled)
    sizes = [rng.randint(1, 3) for _ in shuffled]
    batches, start = [], 0
    for size in sizes:
        if start < len(shuffled):
            batches.append(shuffled[start : start + size])
            start += size
    late = _deliver(batches)

    expected = _definition(events)
    assert {a.dedup_key.rsplit("|", 1)[1]: set(a.evidence) for a in in_order.values()} == {
        str(bucket): refs for bucket, refs in expected.items()
    }
    assert _view(late) == _view(in_order)


def test_failures_arriving_after_two_close_successes_complete_the_second(tmp_path: Path) -> None:
    # A legitimate sign-in, then an attacker's three failures and success two minutes later:
    # the failures arrive last. The second success no longer continues the first.
    events = _events([(0, SUCCESS), (0.5, FAILED), (1, FAILED), (1.5, FAILED), (2, SUCCESS)])
    late = _deliver([[events[0]], [events[4]], events[1:4]])
    in_order = _deliver([[e] for e in events])
    assert [a.evidence[-1] for a in in_order.values()] == [EventRef.of(events[4])]
    assert _view(late) == _view(in_order)
    assert _view(_deliver([[events[0]], [events[4]], [events[1]], events[2:4]], tmp_path)) == _view(
        in_order
    )


def test_a_late_earlier_success_takes_the_citation_from_the_one_it_continues() -> None:
    events = _events([(0, FAILED), (1, FAILED), (2, FAILED), (3, SUCCESS), (4, SUCCESS)])
    in_order = _deliver([[e] for e in events])
    late = _deliver([[events[4]], events[:3], [events[3]]])
    assert [tuple(a.evidence) for a in in_order.values()] == [
        tuple(EventRef.of(e) for e in events[:4])
    ]
    assert _view(late) == _view(in_order)
