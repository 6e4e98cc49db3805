"""What people do at a rate per person (password changes, ID Protection's risk detections) stays
in real tenants' band per 1,000 users a day, whatever the stream's rate."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from hubsight.simulate import SimulationConfig

from .runs import DAY_START, simulate

USERS = 2000


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_password_changes_and_risk_detections_per_thousand_users_a_day(rate: float) -> None:
    run = simulate(
        SimulationConfig(
            seed=11, rate=rate, users=USERS, start=DAY_START, duration=timedelta(days=1)
        )
    )
    seen: Counter[str] = Counter()
    for record in run.records():
        if record.get("operationName") == "Change user password":
            seen["password"] += 1
        elif record.get("category") in ("UserRiskEvents", "RiskyUsers"):
            seen[record["category"]] += 1
    per_thousand = {kind: count * 1000 / USERS for kind, count in seen.items()}
    # Real tenants: a few password changes a day per 1,000 users, single digits to tens of risk
    # detections. As shares of the stream they were 1,500 and ~90 at the bench's density.
    assert 1 <= per_thousand["password"] <= 10
    assert 2 <= per_thousand["UserRiskEvents"] <= 30
    # Each detection raises its user's risk.
    assert seen["RiskyUsers"] == seen["UserRiskEvents"]
