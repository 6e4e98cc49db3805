"""Generator -> broker -> collector -> store -> detection -> alert in the API, every scenario."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hubsight.detect.runtime import Detection
from hubsight.devbroker import LocalBroker
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig
from hubsight.web.api import create_app

from tests.support import kafka_source, produce, serving, stored_count, wait_until

pytestmark = pytest.mark.integration


def test_every_planted_scenario_raises_its_alerts_end_to_end(
    broker: LocalBroker, topic: str, data_dir: Path
) -> None:
    # The tenant is new: no silent learning period, so baseline rules may fire at once.
    (data_dir / "detect.toml").write_text("learning_days = 0\n")
    truth: list[dict[str, Any]] = []
    config = SimulationConfig(
        seed=7,
        rate=6,
        users=60,
        scenarios=tuple(SCENARIOS),
        # Recent, as live traffic is: events arriving over 24 h after they happened are too
        # late for the windowed rules.
        start=(datetime.now(UTC) - timedelta(minutes=80)).replace(microsecond=0),
        duration=timedelta(minutes=70),
    )
    bodies = [m.body for m in Simulation(config, truth=truth.append).messages()]
    records = sum(len(json.loads(b)["records"]) for b in bodies)
    produce(broker.bootstrap, topic, bodies)
    detection = Detection.open(data_dir)
    try:
        source = kafka_source("azure", broker.bootstrap, topic)
        with serving(
            data_dir, source, registry=default_registry(), on_stored=detection.on_stored
        ) as service:
            wait_until(lambda: stored_count(service, "azure") == records, 90, f"{records} events")
            # Detection runs after a batch is counted as stored: wait for it to finish too.
            wait_until(lambda: detection.engine.stats.events == records, 30, "detection")
            app = create_app(service)
            app.state.detect_db = detection.engine.db
            with TestClient(app) as client:
                alerts = client.get("/api/v1/alerts", params={"limit": 1000}).json()
                # First sign-in from a new country is a notable, not an alert.
                notables = client.get(
                    "/api/v1/alerts", params={"limit": 1000, "notables": True}
                ).json()
    finally:
        detection.close()
    raised = {alert["rule_id"] for alert in alerts + notables}
    expected = {rule for entry in truth for rule in entry["expect"]}
    assert len(truth) == len(SCENARIOS)
    assert sorted(expected - raised) == [], f"raised: {sorted(raised)}"
    alert = next(a for a in alerts if a["rule_id"] == "auth.brute_force_success")
    assert alert["evidence"]
    assert {e["log_name"] for e in alert["evidence"]} == {"azure"}
