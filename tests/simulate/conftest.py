"""One simulated day shared by the simulator's tests (it takes a few seconds to generate)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hubsight.simulate import SCENARIOS, SimulationConfig

from .runs import DAY_START, Run, simulate


@pytest.fixture(scope="session")
def day() -> Run:
    """A Monday of a 60-person tenant at 0.4 records/s with every scenario planted once."""
    config = SimulationConfig(
        seed=7,
        rate=0.4,
        users=60,
        start=DAY_START,
        duration=timedelta(days=1),
        scenarios=tuple(SCENARIOS),
    )
    return simulate(config)
