"""A cheap guard on the noise budget: one alert per rule per day per 1,000 users (issue 13).

``bench/detect.py`` is the measurement (a simulated day of 1,000 users after a warm-up). This
slice is a twentieth of that, 200 users for six working hours, so it catches only rules far over
the budget: two background alerts here is forty a day per 1,000 users. Notables and rules louder
by design (``RuleMeta.loud``) are not held to it. The background before it starts the working
day before: rules that learn what is usual count only what is at least the lateness (24 h) old,
so a shorter warm-up leaves them blind to the office (password spray then reads colleagues
mistyping behind one egress address as a spray, and does so on some random streams only).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert
from hubsight.detect.coverage import score
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.ruleset import build_ruleset, rule_classes
from hubsight.detect.settings import DetectConfig
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig

# A Tuesday, after Monday's working day; the tenant's headquarters (seed 1) are an hour ahead
# of UTC.
START = datetime(2026, 1, 6, 11, 0, tzinfo=UTC)
WARMUP = timedelta(hours=27)
USERS = 200


@pytest.fixture(scope="module")
def slice_() -> tuple[list[Alert], list[dict[str, Any]]]:
    """The alerts of every shipped rule on the slice, and its ground truth."""
    truth: list[dict[str, Any]] = []
    config = SimulationConfig(
        seed=1,
        rate=3.4 * USERS / 1000,  # the bench's records per user
        users=USERS,
        start=START - WARMUP,
        duration=WARMUP + timedelta(hours=6),
        quiet=WARMUP,
        scenarios=tuple(SCENARIOS),
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    events: list[Event] = []
    for sim in Simulation(config, truth=truth.append).messages():
        events.extend(parser.parse(sim.as_message()))
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        build_ruleset(DetectConfig(), {}).rules,
        options=EngineOptions(persist=False, learning=WARMUP),
    )
    final: dict[str, Alert] = {}
    for start in range(0, len(events), 1000):
        for alert in engine.process(events[start : start + 1000]):
            final[alert.id] = alert
        for gone in engine.withdrawn:
            final.pop(gone, None)
    engine.db.close()
    return list(final.values()), truth


def test_no_rule_is_far_over_the_noise_budget_on_background_traffic(
    slice_: tuple[list[Alert], list[dict[str, Any]]],
) -> None:
    alerts, truth = slice_
    exempt = {cls.meta.id for cls in rule_classes() if cls.meta.loud}
    exempt |= {a.rule_id for a in alerts if a.notable}
    measured = [a for a in alerts if a.first_event_time >= START]
    background = Counter(
        {r: n for r, n in score(measured, truth).background.items() if r not in exempt}
    )
    assert {rule: n for rule, n in background.items() if n > 1} == {}


def test_the_slice_plants_its_scenarios_after_the_warm_up_and_they_are_caught(
    slice_: tuple[list[Alert], list[dict[str, Any]]],
) -> None:
    alerts, truth = slice_
    assert len(truth) == len(SCENARIOS)
    assert min(datetime.fromisoformat(t["start"]) for t in truth) >= START
    coverage = score(alerts, truth)
    # Background is what cites no planted record: a slice whose alerts all cited planted
    # records, or none, would make the guard above vacuous.
    assert coverage.missed == []
    assert sum(coverage.background.values()) > 0
