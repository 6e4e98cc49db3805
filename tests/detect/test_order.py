"""Delivery order changes no alert: a simulated tenant delivered in event-time order, shuffled
within the lateness, and shuffled with a restart in the middle ends with the same alerts, for
every rule."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert, AlertFilter
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.ruleset import build_ruleset
from hubsight.detect.settings import DetectConfig
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import Simulation, SimulationConfig

START = datetime(2026, 1, 5, tzinfo=UTC)
LATENESS = timedelta(hours=24)
BATCH = 1000
# Travellers and phished users, several times over: what moves notables when delivered late.
PLANTED = (
    "impossible-travel",
    "device-code-phish",
    "password-spray",
    "impossible-travel",
    "risky-signin",
    "brute-force",
    "impossible-travel",
    "device-code-phish",
    "mfa-fatigue",
    "impossible-travel",
    "tor-signin",
    "impossible-travel",
)
# Rules whose verdicts hang on what else arrived: all must fire in the stream.
ORDER_SENSITIVE = {
    "auth.new_country",
    "auth.unusual_flow",
    "auth.password_spray",
    "auth.impossible_travel",
    "auth.brute_force_success",
    "auth.mfa_fatigue_success",
}


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """44 hours of a 300-user tenant, in event-time order."""
    return simulate()


def simulate() -> list[Event]:
    """44 hours of a 300-user tenant with ``PLANTED`` (about 60,000 events), by event time."""
    config = SimulationConfig(
        seed=1,
        rate=0.35,
        users=300,
        scenarios=PLANTED,
        start=START,
        duration=timedelta(hours=44),
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    out: list[Event] = []
    for sim in Simulation(config).messages():
        out.extend(parser.parse(sim.as_message()))
    return sorted(out, key=lambda e: e.timestamp)


def _arrival(events: Sequence[Event], seed: int) -> list[Event]:
    """``events`` as delivered: half within minutes, half up to the whole lateness late."""
    rng = random.Random(seed)
    lateness = LATENESS.total_seconds()

    def arrives(event: Event) -> float:
        spread = lateness if rng.random() < 0.5 else 600.0
        return event.timestamp.timestamp() + rng.uniform(0, spread)

    return sorted(events, key=arrives)


def _engine(learning: timedelta, path: Path | None = None) -> DetectionEngine:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    return DetectionEngine(
        db,
        build_ruleset(DetectConfig(), {}).rules,
        options=EngineOptions(lateness=LATENESS, learning=learning, persist=path is not None),
    )


def _batches(events: Sequence[Event]) -> Iterable[Sequence[Event]]:
    for start in range(0, len(events), BATCH):
        yield events[start : start + BATCH]


def _in_memory(events: Sequence[Event], learning: timedelta) -> dict[str, Alert]:
    engine = _engine(learning)
    final: dict[str, Alert] = {}
    for batch in _batches(events):
        final.update((a.dedup_key, a) for a in engine.process(batch))
        withdrawn = set(engine.withdrawn)
        final = {key: a for key, a in final.items() if a.id not in withdrawn}
    assert engine.stats.too_late == 0, "the delivery broke the lateness it promised"
    return final


def _with_restart(events: Sequence[Event], learning: timedelta, path: Path) -> dict[str, Alert]:
    half = len(events) // 2
    first = _engine(learning, path)
    for batch in _batches(events[:half]):
        first.process(batch)
    first.close()
    second = _engine(learning, path)
    for batch in _batches(events[half:]):
        second.process(batch)
    final = {a.dedup_key: a for a in second.alerts.find(AlertFilter(limit=100_000))}
    second.close()
    return final


def _view(alerts: dict[str, Alert]) -> dict[str, tuple[Any, ...]]:
    """What must not depend on delivery: rule, user, times, evidence, notables per dedup key."""
    return {
        key: (
            a.rule_id,
            a.user,
            a.first_event_time,
            a.last_event_time,
            tuple(a.evidence),
            tuple(a.context.get("notables", ())),
        )
        for key, a in alerts.items()
    }


@pytest.mark.parametrize(
    ("learning", "corrected"),
    [
        (timedelta(0), {"auth.new_country", "auth.service_principal_new_network"}),
        # Longer than the lateness: the service principals' first day is all learning.
        (timedelta(hours=26), {"auth.new_country"}),
    ],
    ids=["no-learning", "learning-26h"],
)
def test_shuffled_and_restarted_delivery_gives_the_alerts_of_in_order_delivery(
    events: list[Event], learning: timedelta, corrected: set[str], tmp_path: Path
) -> None:
    expected = _in_memory(events, learning)
    moved = _in_memory(_arrival(events, seed=5), learning)

    assert {a.rule_id for a in expected.values()} >= ORDER_SENSITIVE | corrected
    # Late sign-ins did move notables and alerts of the baseline rules, and they converged.
    assert {a.rule_id for a in moved.values() if a.revision > 1} >= corrected
    assert _view(moved) == _view(expected)
    assert _view(_with_restart(_arrival(events, seed=4), learning, tmp_path)) == _view(expected)
