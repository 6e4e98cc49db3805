"""Running a simulation to its end and reading its records back by ground-truth reference."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from hubsight.simulate import SimMessage, Simulation, SimulationConfig

DAY_START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Run:
    """The messages of one simulation and its ground truth."""

    config: SimulationConfig
    messages: list[SimMessage]
    truth: list[dict[str, Any]]

    def record(self, ref: dict[str, Any]) -> dict[str, Any]:
        """The record a ground-truth reference points at."""
        body = msgspec.json.decode(self.messages[ref["message"]].body)
        record: dict[str, Any] = body["records"][ref["index"]]
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record of the run, in delivery order."""
        return [r for m in self.messages for r in msgspec.json.decode(m.body)["records"]]


def simulate(config: SimulationConfig) -> Run:
    """Run a simulation to its end and keep everything."""
    truth: list[dict[str, Any]] = []
    messages = list(Simulation(config, truth=truth.append).messages())
    return Run(config, messages, truth)
