"""Generator -> broker -> collector -> store: events arrive normalized and are searchable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker
from hubsight.parsing.registry import default_registry
from hubsight.query.search import SearchRequest, search
from hubsight.simulate import Simulation, SimulationConfig

from tests.support import Window, kafka_source, produce, serving, stored_count, wait_until

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_simulated_tenant_is_stored_normalized_and_searchable(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    truth: list[dict[str, object]] = []
    config = SimulationConfig(
        seed=11,
        # A fifth of the default rate: 16,663 records, every category still among them (83,082
        # at the default made the test wait on volume; on a loaded machine past its 60 s).
        rate=4.0,
        start=START,
        duration=timedelta(minutes=40),
        scenarios=("brute-force", "impossible-travel"),
        scenario_interval=timedelta(minutes=10),
    )
    bodies = [m.body for m in Simulation(config, truth=truth.append).messages()]
    records = sum(len(json.loads(b)["records"]) for b in bodies)
    produce(broker.bootstrap, topic, bodies, partitions=4)
    window: Window = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    source = kafka_source("azure", broker.bootstrap, topic, keep_unparsed=True)
    with serving(data_dir, source, registry=default_registry()) as service:
        wait_until(lambda: stored_count(service, "azure") == records, 60, f"{records} events")
        by_set = search(
            service.store, SearchRequest(query="groupby(log_set) calculate(count)", **window)
        )
        sets = {row[0]: row[1] for row in by_set.rows}
        assert sets["Ingress Authentication"] > 0
        assert sets["Cloud Service Admin Activity"] > 0
        unparsed = service.store.select(
            "SELECT DISTINCT category FROM events WHERE log_set = 'Unparsed Data'"
        )
        # Only the simulator's deliberately truncated records, which have no category.
        assert {r["category"] for r in unparsed} <= {""}

        failures = search(
            service.store,
            SearchRequest(
                query="where(result=FAILED_BAD_PASSWORD) groupby(user) calculate(count) "
                "sort(desc) limit(1)",
                log_sets=("Ingress Authentication",),
                **window,
            ),
        )
        (victim, count) = failures.rows[0]
        assert count >= 10, "the brute force's failures are found by result"
        assert "@" in victim
        assert victim == victim.lower()

        by_user = search(
            service.store,
            SearchRequest(query=f'where(user="{victim}") groupby(source_ip)', **window),
        )
        attacker_ip = by_user.rows[0][0]
        by_ip = search(
            service.store,
            SearchRequest(query=f"where(source_ip={attacker_ip}) calculate(count)", **window),
        )
        assert by_ip.rows[0][0] >= 1
