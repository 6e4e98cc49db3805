"""The engine on a simulated tenant: scenarios caught, order and restarts change nothing."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubsight.detect.alerts import Alert, AlertFilter, alert_id
from hubsight.detect.base import EventKind, Rule
from hubsight.detect.baseline import UserBaseline
from hubsight.detect.coverage import score
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_baseline import ImpossibleTravel, NewCountry
from hubsight.detect.rules.auth_signals import UnusualAuthFlow
from hubsight.detect.rules.auth_volume import BruteForce
from hubsight.detect.rules.signals import entry_of, signin
from hubsight.detect.ruleset import build_rule, build_ruleset
from hubsight.detect.settings import DetectConfig, RuleExceptions
from hubsight.detect.state import StateSize
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig

from tests.support import LAGOS

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BATCH = 1000


class Tenant:
    """A simulated hour with every scenario planted, parsed into events in arrival order."""

    def __init__(self) -> None:
        self.truth: list[dict[str, Any]] = []
        config = SimulationConfig(
            seed=7,
            rate=6,
            users=60,
            scenarios=tuple(SCENARIOS),
            start=START,
            duration=timedelta(minutes=70),
        )
        parser = MessageParser(log_name="sim", registry=default_registry(None, None))
        self.events: list[Event] = []
        for sim in Simulation(config, truth=self.truth.append).messages():
            self.events.extend(parser.parse(sim.as_message()))


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant()


@pytest.fixture(scope="module")
def reference(tenant: Tenant) -> dict[str, Alert]:
    """The alerts of one uninterrupted in-memory run in arrival order."""
    return _run(_engine(), tenant.events)


def _rules() -> list[Rule[Any]]:
    return build_ruleset(DetectConfig(), {}).rules


def _engine(path: Path | None = None, **options: Any) -> DetectionEngine:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    return DetectionEngine(
        db,
        _rules(),
        options=EngineOptions(learning=timedelta(0), persist=path is not None, **options),
    )


def _batches(events: Sequence[Event]) -> Iterable[Sequence[Event]]:
    for start in range(0, len(events), BATCH):
        yield events[start : start + BATCH]


def _run(engine: DetectionEngine, events: Sequence[Event]) -> dict[str, Alert]:
    final: dict[str, Alert] = {}
    for batch in _batches(events):
        for alert in engine.process(batch):
            final[alert.dedup_key] = alert
        withdrawn = set(engine.withdrawn)
        final = {key: a for key, a in final.items() if a.id not in withdrawn}
    return final


# Rules that keep one representative of an uninterrupted run of successes within minutes: the
# alerts are the same, the success they cite may differ.
THINNED_RULES = {"auth.brute_force_success", "auth.mfa_fatigue_success"}


def _view(alerts: dict[str, Alert]) -> dict[str, tuple[Any, ...]]:
    """What must not depend on delivery: keys, evidence, event times, severity."""
    return {
        key: (a.rule_id, a.severity, a.first_event_time, a.last_event_time, tuple(a.evidence))
        for key, a in alerts.items()
    }


def _order_independent(alerts: dict[str, Alert]) -> dict[str, tuple[Any, ...]]:
    return {k: (v[0],) if v[0] in THINNED_RULES else v for k, v in _view(alerts).items()}


def test_every_planted_scenario_is_detected(tenant: Tenant, reference: dict[str, Alert]) -> None:
    coverage = score(reference.values(), tenant.truth)
    assert len(tenant.truth) == len(SCENARIOS)
    assert coverage.missed == []
    detected = {expect for _, expect in coverage.detected}
    assert coverage.unmapped == []
    assert detected >= {
        "auth.brute_force_success",
        "auth.password_spray",
        "auth.impossible_travel",
        "auth.mfa_fatigue",
        "azure.log_tampering",
        "thirdparty.vendor_alert",
    }


def test_late_and_out_of_order_delivery_gives_the_same_alerts(tenant: Tenant) -> None:
    in_order = sorted(tenant.events, key=lambda e: e.timestamp)
    shuffled = list(tenant.events)
    random.Random(3).shuffle(shuffled)
    expected = _order_independent(_run(_engine(), in_order))
    assert {v[0] for v in expected.values()} >= {
        "auth.brute_force",
        "auth.distributed_cracking",
        "auth.impossible_travel",
    }
    assert _order_independent(_run(_engine(), shuffled)) == expected
    assert _order_independent(_run(_engine(), list(reversed(in_order)))) == expected


def test_events_later_than_the_lateness_skip_windows_only(tenant: Tenant) -> None:
    engine = _engine(lateness=timedelta(hours=24))
    in_order = sorted(tenant.events, key=lambda e: e.timestamp)
    engine.process(in_order)
    marker = in_order[-1]
    engine.process(
        [
            _shifted(marker, timedelta(hours=30), offset=10**9),
            _shifted(marker, timedelta(hours=-26), offset=10**9 + 1),
        ]
    )
    assert engine.stats.too_late == 1


def _shifted(event: Event, delta: timedelta, *, offset: int) -> Event:
    copy = msgspec.structs.replace(event, timestamp=event.timestamp + delta)
    copy.source_offset = offset
    return copy


def _created(engine: DetectionEngine, events: Sequence[Event], live: set[str]) -> list[str]:
    """Dedup keys of the alerts created, keeping ``live`` as the set still standing."""
    created: list[str] = []
    for batch in _batches(events):
        changed = engine.process(batch)
        created += [a.dedup_key for a in changed if a.revision == 1]
        live |= {a.dedup_key for a in changed}
        withdrawn = set(engine.withdrawn)
        live -= {key for key in live if alert_id(key) in withdrawn}
    return created


def test_restart_mid_stream_neither_duplicates_nor_misses(
    tenant: Tenant, reference: dict[str, Alert], tmp_path: Path
) -> None:
    events = tenant.events
    half = (len(events) // BATCH // 2) * BATCH

    live: set[str] = set()
    first = _engine(tmp_path)
    created = _created(first, events[:half], live)
    first.close()

    second = _engine(tmp_path)
    created += _created(second, events[half:], live)
    stored = {a.dedup_key: a for a in second.alerts.find(AlertFilter(limit=100_000))}
    second.close()

    assert len(created) == len(set(created)), "an alert was created twice"
    assert live == set(reference)
    assert _view(stored) == _view(reference)


def test_crash_and_redelivery_of_the_last_batch_refires_nothing(
    tenant: Tenant, reference: dict[str, Alert], tmp_path: Path
) -> None:
    events = tenant.events
    cut = (len(events) // BATCH // 2) * BATCH
    live: set[str] = set()
    first = _engine(tmp_path, baseline_save_interval=timedelta(0))
    created = _created(first, events[:cut], live)
    # No close(): the process dies; the collector delivers the last batch again.
    second = _engine(tmp_path)
    created += _created(second, events[cut - BATCH :], live)
    assert len(created) == len(set(created))
    assert live == set(reference)


def _failures(minutes: Iterable[int], user: str = "adele.vance@contoso.com") -> list[Event]:
    return [
        signin(m, user, result="FAILED_BAD_PASSWORD", offset=1000 + m + 100 * len(user))
        for m in minutes
    ]


def _window_rows(engine: DetectionEngine, rule_id: str) -> int:
    """How many window entries of the rule are on disk."""
    rows = engine.db.rows("SELECT body FROM window_batches WHERE rule_id = ?", (rule_id,))
    # Rows migrated from older versions are JSON text; new ones MessagePack.
    batches = [
        msgspec.json.decode(body) if isinstance(body, str) else msgspec.msgpack.decode(body)
        for body in (row["body"] for row in rows)
    ]
    return sum(len(entries) for batch in batches for entries in batch.values())


def test_reconfigure_keeps_windows_of_rules_still_present(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    brute_force = build_rule(BruteForce, {})
    engine.reconfigure([brute_force], {})
    assert engine.process(_failures(range(5))) == []
    assert _window_rows(engine, "auth.brute_force") == 5
    # A new instance with other thresholds: the five failures already counted still count.
    engine.reconfigure([build_rule(BruteForce, {"count": 8})], {})
    fired = engine.process(_failures(range(5, 8)))
    assert [(a.rule_id, len(a.evidence)) for a in fired] == [("auth.brute_force", 8)]
    engine.close()


def test_reconfigure_applies_exceptions_and_drops_windows_of_removed_rules(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    engine.reconfigure([build_rule(BruteForce, {})], {})
    engine.process(_failures(range(9)) + _failures(range(9), user="bob@contoso.com"))
    engine.reconfigure(
        [build_rule(BruteForce, {})],
        {"auth.brute_force": RuleExceptions(users=("adele.vance@contoso.com",))},
    )
    fired = engine.process(_failures([9]) + _failures([9], user="bob@contoso.com"))
    assert [a.user for a in fired] == ["bob@contoso.com"]
    engine.reconfigure([], {})
    assert _window_rows(engine, "auth.brute_force") == 0
    assert engine.process(_failures(range(10, 20))) == []
    # Alerts stay: the one alert is still there, and the engine knows it when the rule returns.
    engine.reconfigure([build_rule(BruteForce, {})], {})
    again = engine.process(_failures(range(10, 20), user="bob@contoso.com"))
    assert [(a.user, a.revision) for a in again] == [("bob@contoso.com", 2)]
    engine.close()


def _baseline_rows(engine: DetectionEngine) -> int:
    return int(engine.db.rows("SELECT count(*) AS n FROM baselines")[0]["n"])


def test_baselines_are_saved_every_interval_and_at_close(tmp_path: Path) -> None:
    signins = [signin(m, offset=m) for m in range(3)]
    every_batch = _engine(tmp_path / "a", baseline_save_interval=timedelta(0))
    every_batch.process(signins)
    # The user's, and the tenant's sign-in network and address history (``dataplane``).
    assert _baseline_rows(every_batch) == 3
    every_batch.close()
    hourly = _engine(tmp_path / "b", baseline_save_interval=timedelta(hours=1))
    hourly.process(signins)
    assert _baseline_rows(hourly) == 0
    hourly.close()
    reopened = DetectDB(tmp_path / "b" / "detect.sqlite3")
    (row,) = reopened.rows("SELECT subject, body FROM baselines WHERE subject NOT LIKE 'data:%'")
    seen = msgspec.msgpack.decode(row["body"], type=UserBaseline).kinds["country"]["DE"]
    assert (row["subject"], seen.count) == ("adele.vance@contoso.com", 3)
    reopened.close()


def _log_set_and_result(rule: Rule[Any], kind: EventKind) -> bool:
    meta = rule.meta
    return kind.log_set in meta.log_sets and (meta.results is None or kind.result in meta.results)


def test_rules_are_not_called_for_events_they_cannot_read_and_nothing_is_missed(
    tenant: Tenant, reference: dict[str, Alert], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _rules()
    app_signin = EventKind(LogSet.SSO_AUTHENTICATION, "SUCCESS", "Sign-in activity", False)
    assert "auth.brute_force_success" not in {r.meta.id for r in rules if r.reads(app_signin)}
    # An Activity Log record, as the engine sorts it (Kubernetes audit rules read only theirs).
    purge = EventKind(
        LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
        "SUCCESS",
        "Microsoft.KeyVault/vaults/delete",
        True,
        category="Administrative",
    )
    deleted = {"azure.deletion_burst", "keyvault.vault_deleted"}
    assert {r.meta.id for r in rules if r.reads(purge)} == deleted
    for rule in rules:
        # Events by log set and result only, as the engine sorted them before kinds.
        monkeypatch.setattr(rule, "reads", partial(_log_set_and_result, rule))
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        rules,
        options=EngineOptions(learning=timedelta(0), persist=False),
    )
    assert _view(_run(engine, tenant.events)) == _view(reference)


def test_state_saved_as_json_by_older_versions_is_read(tmp_path: Path) -> None:
    path = tmp_path / "detect.sqlite3"
    old = sqlite3.connect(path)
    # Older versions kept one row per window entry, and JSON bodies.
    old.execute("CREATE TABLE window_entries (rule_id TEXT, key TEXT, ts REAL, body BLOB)")
    entries = [(e.user, entry_of(e, e.source_ip or "")) for e in _failures(range(9))]
    old.executemany(
        "INSERT INTO window_entries VALUES ('auth.brute_force', ?, ?, ?)",
        [(user, entry.ts, msgspec.json.encode(entry)) for user, entry in entries],
    )
    known = UserBaseline()
    known.observe("country", "DE", signin(-60).timestamp.timestamp(), 90 * 86400.0)
    old.execute("CREATE TABLE baselines (subject TEXT PRIMARY KEY, body BLOB NOT NULL)")
    old.execute(
        "INSERT INTO baselines VALUES ('adele.vance@contoso.com', ?)", (msgspec.json.encode(known),)
    )
    old.commit()
    old.close()
    engine = DetectionEngine(
        DetectDB(path),
        [build_rule(BruteForce, {}), build_rule(NewCountry, {})],
        options=EngineOptions(learning=timedelta(0)),
    )
    assert _window_rows(engine, "auth.brute_force") == 9
    nigeria = signin(20, country="NG", ip="102.89.1.1", offset=99)
    fired = {a.rule_id: a for a in engine.process([*_failures([9]), nigeria])}
    assert len(fired["auth.brute_force"].evidence) == 10
    assert "DE" in (fired["auth.new_country"].baseline or "")
    engine.close()


def test_impossible_travel_follows_windows_the_engine_pruned(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.reconfigure([build_rule(ImpossibleTravel, {})], {})
    assert engine.process([signin(0, offset=1)]) == []
    # 50 hours on, the first sign-in is older than lateness and window: the engine prunes it.
    assert engine.process([signin(3000, offset=2)]) == []
    fired = engine.process([signin(3030, offset=3, **LAGOS)])
    assert [[ref.source_offset for ref in a.evidence] for a in fired] == [[2, 3]]
    engine.close()


def test_impossible_travel_keeps_one_value_string_per_place(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.reconfigure([build_rule(ImpossibleTravel, {})], {})
    users = ("adele.vance@contoso.com", "lee.gu@contoso.com")
    engine.process([signin(m, users[m % 2], offset=m) for m in range(4)])
    engine.process([signin(900, offset=9, **LAGOS)])
    values = [e.value for w in engine._state.windows.values() for e in w]
    # Four sign-ins of two users from Berlin, one from Lagos: two strings, not five.
    assert sorted(values) == ["52.520,13.400,DE"] * 4 + ["6.450,3.390,NG"]
    assert len({id(v) for v in values}) == 2
    engine.close()


def test_a_loud_alert_is_read_once_and_what_process_returned_stays_as_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    engine.reconfigure([build_rule(BruteForce, {})], {})
    reads: list[str] = []
    read = engine.alerts.by_dedup_key

    def counted(key: str) -> Alert | None:
        reads.append(key)
        return read(key)

    monkeypatch.setattr(engine.alerts, "by_dedup_key", counted)
    (alert,) = engine.process(_failures(range(10)))
    returned = (list(alert.evidence), alert.last_event_time, alert.revision, dict(alert.context))
    updates = [engine.process(_failures(range(m, m + 2))) for m in range(10, 30, 2)]
    assert [[(a.dedup_key, a.revision) for a in fired] for fired in updates] == [
        [(alert.dedup_key, revision)] for revision in range(2, 12)
    ]
    assert updates[-1][0].last_event_time > alert.last_event_time
    # The database was asked once, when the alert did not exist yet.
    assert reads == [alert.dedup_key]
    assert (list(alert.evidence), alert.last_event_time, alert.revision, alert.context) == returned
    engine.close()
    # After a restart the alert is read from the database and goes on.
    again = _engine(tmp_path)
    again.reconfigure([build_rule(BruteForce, {})], {})
    (later,) = again.process(_failures(range(30, 32)))
    assert (later.dedup_key, later.revision) == (alert.dedup_key, 12)
    again.close()


@pytest.mark.parametrize(("cap", "kept"), [(11, 8), (12, 12)])
def test_windows_over_their_cap_drop_the_oldest_and_events_that_old_are_too_late(
    tmp_path: Path, cap: int, kept: int
) -> None:
    brute_force = build_rule(BruteForce, {"count": 1_000})
    # The rule keeps its window's length beyond the lateness, and beyond the cut.
    keeps = brute_force.retention().total_seconds()
    engine = _engine(tmp_path, max_window_entries=cap)
    engine.reconfigure([brute_force], {})
    for event in _failures(range(12)):
        engine.process([event])
    # Twelve entries: one over a cap of 11 keeps three quarters of the cap, the newest; a cap
    # of 12 is not passed and keeps them all.
    assert sum(len(w) for w in engine._state.windows.values()) == kept
    # What /metrics exports: the entries counted after the cut, not before it.
    assert engine.state_size() == StateSize(windows=1, entries=kept, baselines=0)
    assert _window_rows(engine, "auth.brute_force") == kept
    assert engine.stats.too_late == 0
    # The bench reports the cuts: one past a cap of 11, none at 12.
    assert engine.stats.window_cuts == (1 if kept < 12 else 0)
    # Cut at minute 4: a late failure from before it (and its retention) skips windows, one
    # after it is counted.
    after = 4 + int(keeps // 60) + 1
    engine.process(_failures([3, after], user="megan.bowen@contoso.com"))
    assert engine.stats.too_late == (1 if kept < 12 else 0)
    # Fourteen entries now: past either cap; the cut survives a restart.
    cut = engine._state.shed_before
    assert cut > 0
    engine.close()
    again = _engine(tmp_path, max_window_entries=cap)
    again.reconfigure([brute_force], {})
    assert again._state.shed_before == cut
    again.process(_failures([2], user="lee.gu@contoso.com"))
    assert again.stats.too_late == 1
    again.close()


def test_a_cut_keeps_what_each_rule_retains_beyond_it(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_window_entries=11)
    engine.reconfigure([build_rule(BruteForce, {"count": 1_000})], {})
    keeps = engine.rules[0].retention().total_seconds()
    assert keeps > 0
    # The twelfth failure, 100 minutes in, moves the newest event time well past the hour a
    # cut leaves events to arrive in: the cut (minute 4 plus the rule's retention) is before it.
    for event in _failures([*range(11), 100]):
        engine.process([event])
    start = _failures([0])[0].timestamp.timestamp()
    assert engine._state.shed_before == start + 4 * 60 + keeps
    assert min(e.ts for w in engine._state.windows.values() for e in w) == start + 4 * 60
    engine.close()


def _flow(minute: float, user: str) -> Event:
    return signin(minute, user, authentication_protocol="deviceCode", offset=5000 + int(minute))


# A second before the cut (minute 23) is too late; the cut itself is not.
@pytest.mark.parametrize(("late_minute", "too_late"), [(23.0, 0), (23.0 - 1 / 60, 1)])
def test_a_cut_leaves_events_an_hour_late_to_windowed_rules_when_long_memories_fill_the_cap(
    tmp_path: Path, late_minute: float, too_late: int
) -> None:
    # Device-code sign-ins are remembered for 90 days: their entries' times plus retention all
    # lie ahead, and a cut that kept that retention whole fell ahead of the newest event, so
    # every event was too late for every windowed rule until event time passed it.
    late_after_cut = timedelta(minutes=30)
    engine = _engine(tmp_path, max_window_entries=12, late_after_cut=late_after_cut)
    flows = build_rule(UnusualAuthFlow, {})
    brute_force = build_rule(BruteForce, {"count": 1_000})
    engine.reconfigure([flows, brute_force], {})
    keeps = brute_force.retention().total_seconds()
    users = [f"user{n}@contoso.com" for n in range(10)]
    engine.process([_flow(m, user) for m, user in enumerate(users)])
    # Four failures at minutes 50-53: 14 entries, over the cap of 12; nine are kept.
    engine.process(_failures(range(50, 54)))
    start = _failures([0])[0].timestamp.timestamp()
    # The cut is the newest event time (minute 53) less ``late_after_cut``; the failures'
    # rule keeps its ten minutes before that whole, the flows give up their oldest.
    latest = start + 53 * 60 - late_after_cut.total_seconds()
    assert engine._state.shed_before == latest
    failures = [
        e.ts
        for (rule, _), w in engine._state.windows.items()
        if rule == "auth.brute_force"
        for e in w
    ]
    assert failures == [start + m * 60 for m in range(50, 54)]
    # Five flows go: the newest nine entries stay, and a flow entry at or after the last cut.
    flows_left = sorted(
        e.ts for (rule, _), w in engine._state.windows.items() if rule == flows.meta.id for e in w
    )
    assert flows_left == [start + m * 60 for m in range(5, 10)]
    # An event 30 minutes late still reaches windowed rules, one a second later does not.
    late = signin(late_minute, "megan.bowen@contoso.com", result="FAILED_BAD_PASSWORD", offset=9000)
    engine.process([late])
    assert engine.stats.too_late == too_late
    assert keeps < late_after_cut.total_seconds()
    engine.close()
