"""The simulation loop: repeatable, Event Hub-shaped, all categories, daily rhythm, late records."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import msgspec
import pytest

from hubsight.errors import ConfigError
from hubsight.simulate import (
    CATEGORIES,
    MAX_MESSAGE_BYTES,
    Simulation,
    SimulationConfig,
    generate_messages,
    stream_messages,
)
from hubsight.simulate.background import TRUNCATED, rhythm, working_factor
from hubsight.simulate.resources import POSTURE_KINDS

from .runs import DAY_START, Run, simulate


def _short(seed: int) -> SimulationConfig:
    return SimulationConfig(
        seed=seed, rate=50, users=30, start=DAY_START + timedelta(hours=9), count=3000
    )


def test_the_same_seed_gives_the_same_bytes() -> None:
    first = [m.body for m in simulate(_short(3)).messages]
    again = [m.body for m in simulate(_short(3)).messages]
    other = [m.body for m in simulate(_short(4)).messages]
    assert first == again
    assert first != other


def test_count_stops_at_that_many_records() -> None:
    run = simulate(_short(3))
    assert sum(m.records for m in run.messages) == 3000
    assert len(run.records()) == 3000


def test_messages_are_event_hub_bodies_of_at_most_one_megabyte(day: Run) -> None:
    for message in day.messages:
        assert len(message.body) <= MAX_MESSAGE_BYTES
        body = msgspec.json.decode(message.body)
        assert list(body) == ["records"]
        assert len(body["records"]) == message.records >= 1
        # Azure batches one category per message.
        assert {_category(r) for r in body["records"]} == {message.category}


def test_large_batches_are_cut_below_one_megabyte() -> None:
    config = SimulationConfig(
        seed=1,
        rate=2000,
        users=30,
        start=DAY_START + timedelta(hours=9),
        count=5000,
        categories=("SignInLogs",),
        max_records_per_message=10_000,
    )
    sizes = [len(m.body) for m in simulate(config).messages]
    assert max(sizes) <= MAX_MESSAGE_BYTES
    assert max(sizes) > 0.9 * MAX_MESSAGE_BYTES


def test_background_covers_every_category(day: Run) -> None:
    seen = Counter(_category(r) for r in day.records())
    assert set(seen) == set(CATEGORIES)
    # Token refreshes outnumber interactive sign-ins, as in real tenants.
    assert seen["NonInteractiveUserSignInLogs"] > 3 * seen["SignInLogs"]
    assert seen["SignInLogs"] > seen["ADFSSignInLogs"]


def test_people_sign_in_during_their_working_day(day: Run) -> None:
    by_hour: Counter[int] = Counter()
    for record in day.records():
        if record.get("category") == "SignInLogs":
            created = datetime.fromisoformat(record["properties"]["createdDateTime"])
            by_hour[created.hour] += 1
    # Headquarters is in Berlin (UTC+1): 09-11 UTC is mid-morning, 01-03 UTC is night.
    assert by_hour[9] + by_hour[10] > 4 * (by_hour[1] + by_hour[2] + 1)


def test_rhythm_is_high_on_weekday_mornings_and_low_at_night_and_weekends() -> None:
    assert working_factor(10.5, 1) > 0.9
    assert working_factor(3.0, 1) < 0.1
    assert working_factor(10.5, 6) < 0.25
    monday_night = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert rhythm("steady", monday_night, 1) == 1.0
    assert 0.35 <= rhythm("devices", monday_night, 1) < 0.5


def test_records_arrive_after_they_happen_and_out_of_order(day: Run) -> None:
    inversions = 0
    previous = None
    for message in day.messages:
        for record in msgspec.json.decode(message.body)["records"]:
            created = record.get("properties", {}).get("createdDateTime")
            if created is None:
                continue
            happened = datetime.fromisoformat(created)
            assert happened < message.enqueued_time
            if previous is not None and happened < previous:
                inversions += 1
            previous = happened
    assert inversions > 100


def test_sign_in_records_are_as_large_as_real_ones() -> None:
    bodies = generate_messages(3, seed=2, categories=["SignInLogs"])
    sizes = [
        len(msgspec.json.encode(r)) for body in bodies for r in msgspec.json.decode(body)["records"]
    ]
    assert 2000 < sum(sizes) / len(sizes) < 5000


def test_generate_messages_returns_exactly_that_many_bodies() -> None:
    bodies = generate_messages(7, seed=5)
    assert len(bodies) == 7
    assert all(msgspec.json.decode(b)["records"] for b in bodies)


def test_stream_messages_starts_with_the_last_ten_minutes() -> None:
    # A live stream begins with the records Azure would still be delivering from the last
    # minutes, so the first bodies come at once.
    bodies = list(itertools.islice(stream_messages(seed=3, rate=20, users=20), 5))
    assert len(bodies) == 5
    for body in bodies:
        assert msgspec.json.decode(body)["records"]


def test_live_run_is_paced_to_the_clock() -> None:
    now = [datetime(2026, 11, 24, 10, 0, tzinfo=UTC)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)

    config = SimulationConfig(seed=1, rate=20, users=20, duration=timedelta(minutes=12))
    sim = Simulation(config, clock=lambda: now[0], sleep=sleep)
    records = sum(m.records for m in sim.messages())
    # Ten minutes of warm-up run at once, the last two minutes are paced second by second.
    assert 100 < sum(slept) <= 121
    assert records > 0


def test_a_quiet_lead_in_plants_nothing_in_it_and_spreads_the_scenarios_over_the_rest() -> None:
    start = DAY_START + timedelta(hours=9)
    config = SimulationConfig(
        seed=3,
        rate=40 / 45,  # the simulator steps 45 s at this rate
        users=30,
        start=start,
        duration=timedelta(minutes=75),
        quiet=timedelta(hours=1),
        scenarios=("password-spray", "password-spray", "password-spray"),
    )
    starts = sorted(datetime.fromisoformat(t["start"]) for t in simulate(config).truth)
    # Three scenarios at a quarter, half and three quarters of the 15 minutes after the lead-in.
    quiet_end = start + timedelta(hours=1)
    for planted, quarter in zip(starts, (1, 2, 3), strict=True):
        due = quiet_end + timedelta(minutes=15) * quarter / 4
        assert timedelta(0) <= planted - due < timedelta(seconds=45)


def test_oauth_storage_requests_come_from_the_workloads_of_each_account(day: Run) -> None:
    tenant = Simulation(day.config).tenant
    names = {mi.app_id: mi.name for mi in tenant.managed_identities}
    callers: dict[str, set[str]] = {}
    for record in day.records():
        if str(record.get("category", "")).startswith("Storage") and "requester" in record.get(
            "identity", {}
        ):
            account = record["properties"]["accountName"].rstrip("0123456789")
            callers.setdefault(account, set()).add(names[record["identity"]["requester"]["appId"]])
    assert callers == {
        "stprodorders": {"func-orders-prod", "func-thumbnails", "id-data-pipeline"},
        "stlogarchive": {"id-data-pipeline", "logic-approvals"},
    }


def test_users_register_security_info_a_few_times_a_day_per_thousand_not_daily(day: Run) -> None:
    registered = [
        r for r in day.records() if r.get("operationName") == "User registered security info"
    ]
    # The day's 60 users: a few a day per 1,000 users is well under one here.
    assert len(registered) <= 2


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (partial(SimulationConfig, scenarios=("teleport",)), "unknown scenario 'teleport'"),
        (partial(SimulationConfig, rate=0), "rate must be positive"),
        (partial(SimulationConfig, users=3), "at least 10 users"),
        (partial(SimulationConfig, count=0), "count must be at least 1"),
        (
            partial(SimulationConfig, start=datetime(2026, 1, 1)),  # noqa: DTZ001 - the point
            "time zone",
        ),
        (partial(SimulationConfig, categories=("Nope",)), "unknown category 'Nope'"),
        (
            partial(SimulationConfig, quiet=timedelta(seconds=-1)),
            "quiet lead-in cannot be negative",
        ),
        (
            partial(SimulationConfig, quiet=timedelta(hours=1), count=10),
            "needs a duration or a live run",
        ),
        (
            partial(SimulationConfig, quiet=timedelta(hours=1), duration=timedelta(hours=1)),
            "must be shorter than the duration",
        ),
    ],
)
def test_bad_configuration_names_the_problem(
    make: Callable[[], SimulationConfig], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        make()


def _category(record: dict[str, object]) -> str:
    category = record.get("category")
    if isinstance(category, str):
        return category
    # Without a category: a Defender continuous-export object, or what a relay cut short.
    if "SystemAlertId" in record:
        return "SecurityAlert"
    kind = record.get("type", record.get("Type"))
    posture = {type_: name for name, type_ in POSTURE_KINDS.items()}
    return posture[kind] if isinstance(kind, str) else TRUNCATED
