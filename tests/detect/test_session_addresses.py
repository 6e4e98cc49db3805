"""entra.session_many_addresses on a simulated tenant: everyday sessions (a device's day, office
and home) stay under its three addresses an hour; a stolen one replayed elsewhere does not."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.ruleset import build_ruleset
from hubsight.detect.settings import DetectConfig
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import Simulation, SimulationConfig

RULE = "entra.session_many_addresses"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
USERS = 100


def _events(scenarios: tuple[str, ...]) -> list[Event]:
    config = SimulationConfig(
        seed=5,
        rate=3.4 * USERS / 1000,  # the bench's records per user
        users=USERS,
        start=START,
        duration=timedelta(days=1),
        scenarios=scenarios,
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    return [e for m in Simulation(config).messages() for e in parser.parse(m.as_message())]


def _alerts(events: list[Event]) -> list[str]:
    rules = [r for r in build_ruleset(DetectConfig(), {}).rules if r.meta.id.startswith(RULE)]
    engine = DetectionEngine(
        DetectDB(Path(":memory:")), rules, options=EngineOptions(persist=False)
    )
    # An alert that takes in more events is sent again as a revision: count alerts, not sends.
    fired: dict[str, str] = {}
    for start in range(0, len(events), 1000):
        fired |= {a.id: a.rule_id for a in engine.process(events[start : start + 1000])}
    return list(fired.values())


def _most_addresses_in_an_hour(events: list[Event]) -> int:
    uses: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for event in events:
        if event.session_id and event.source_ip and event.result == "SUCCESS":
            uses[event.session_id].append((event.timestamp, event.source_ip))
    most = 0
    for seen in uses.values():
        seen.sort()
        for start, _ in seen:
            hour = {ip for when, ip in seen if start <= when < start + timedelta(hours=1)}
            most = max(most, len(hour))
    return most


def test_a_normal_day_raises_no_alert_and_its_sessions_stay_at_two_addresses() -> None:
    events = _events(())
    assert _alerts(events) == []
    # The edge: commuters' sessions show the office and home within an hour, never a third.
    assert _most_addresses_in_an_hour(events) == 2


def test_a_stolen_session_replayed_from_two_more_addresses_fires() -> None:
    events = _events(("token-theft",))
    assert _most_addresses_in_an_hour(events) == 3
    assert _alerts(events) == [RULE]
