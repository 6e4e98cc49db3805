"""What people do at a rate per person (password changes, ID Protection's risk detections) stays
in real tenants' band per 1,000 users a day, whatever the stream's rate; categories chosen alone
come at the rate they have in the whole tenant."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

import pytest

from hubsight.simulate import SimulationConfig

from .runs import DAY_START, simulate

USERS = 2000


@pytest.mark.parametrize(
    ("rate", "categories"),
    [
        (0.1, None),
        (0.3, None),
        # Chosen alone (no category with a share of the stream among them), at the same rate.
        (0.3, ("UserRiskEvents", "RiskyUsers")),
    ],
)
def test_password_changes_and_risk_detections_per_thousand_users_a_day(
    rate: float, categories: tuple[str, ...] | None
) -> None:
    config = SimulationConfig(
        seed=11,
        rate=rate,
        users=USERS,
        start=DAY_START,
        duration=timedelta(days=1),
        categories=categories,
    )
    run = simulate(config)
    seen: Counter[str] = Counter()
    for record in run.records():
        if categories is not None:
            assert record.get("category") in categories
        if record.get("operationName") == "Change user password":
            seen["password"] += 1
        elif record.get("category") in ("UserRiskEvents", "RiskyUsers"):
            seen[record["category"]] += 1
    per_thousand = {kind: count * 1000 / USERS for kind, count in seen.items()}
    # Real tenants: a few password changes a day per 1,000 users, single digits to tens of risk
    # detections. As shares of the stream they were 1,500 and ~90 at the bench's density.
    if categories is None:
        assert 1 <= per_thousand["password"] <= 10
    assert 2 <= per_thousand["UserRiskEvents"] <= 30
    # Each detection raises its user's risk.
    assert seen["RiskyUsers"] == seen["UserRiskEvents"]


def _per_category(config: SimulationConfig) -> Counter[str]:
    return Counter(str(record.get("category")) for record in simulate(config).records())


@pytest.mark.parametrize("seed", [1, 2])
def test_chosen_categories_come_at_the_rate_they_have_in_the_whole_tenant(seed: int) -> None:
    tenant = SimulationConfig(
        seed=seed,
        rate=5,
        users=100,
        start=DAY_START + timedelta(hours=8),
        duration=timedelta(hours=1),
    )
    whole = _per_category(tenant)
    chosen = ("SignInLogs", "Administrative", "Policy")
    alone = _per_category(dataclasses.replace(tenant, categories=chosen))
    assert set(alone) == set(chosen)
    # ``rate`` is the whole tenant's: the chosen categories keep their share of it, per person
    # the same, instead of sharing all of it between them (several times as many).
    for category in chosen:
        assert 0.8 < alone[category] / whole[category] < 1.25, category
    assert sum(alone.values()) < 0.25 * sum(whole.values())
