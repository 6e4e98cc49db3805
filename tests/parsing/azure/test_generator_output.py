"""The simulator's traffic (every category and scenario) parses with no claimed record unparsed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hubsight.parsing.azure import build_registry
from hubsight.parsing.event import LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig
from hubsight.simulate.background import BROKEN
from hubsight.sources.base import Message

START = datetime(2026, 1, 5, tzinfo=UTC)
# Continuous export's secure scores and compliance assessments carry no time of their own, so
# their event time is the broker's, and each says so with a repair; nothing else is repaired.
TIMELESS = {"DefenderSecureScores", "DefenderRegulatoryCompliance"}


def test_generated_traffic_has_no_unparsed_record_of_a_claimed_category() -> None:
    registry = build_registry()
    parser = MessageParser(log_name="sim", registry=registry, default_domain="contoso.com")
    config = SimulationConfig(seed=3, scenarios=tuple(SCENARIOS), start=START, count=6_000)
    by_set: Counter[tuple[str | None, str]] = Counter()
    repaired: Counter[tuple[str | None, str]] = Counter()
    for sim in Simulation(config).messages():
        message = Message(
            topic="sim", partition=0, offset=sim.sequence, value=sim.body, received_time=START
        )
        for event in parser.parse(message):
            by_set[(sim.category, event.log_set)] += 1
            for repair in event.repairs or ():
                repaired[(sim.category, repair)] += 1
    unparsed = {cat for (cat, log_set) in by_set if log_set == LogSet.UNPARSED_DATA}
    assert unparsed <= set(BROKEN)
    claimed = {cat for (cat, log_set) in by_set if log_set != LogSet.UNPARSED_DATA}
    assert {"SignInLogs", "AuditLogs", "Administrative", "SecurityAlert"} <= claimed
    # Every timeless category that came is repaired, and only they are (a secure score is one
    # record in ~10,000: whether one comes in 6,000 is chance).
    came = {category for category, _ in by_set}
    assert TIMELESS & came
    assert {category for category, _ in repaired} == TIMELESS & came
    assert parser.counters.repairs == {"time_from_broker": sum(repaired.values())}
