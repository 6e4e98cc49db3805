"""Baselines and the rules on them answer by event time: late, earlier events move or withdraw
what later ones raised, and the end result is that of in-order delivery."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert, AlertStore, alert_id
from hubsight.detect.base import EventRef, Rule
from hubsight.detect.baseline import UserBaseline, from_epoch
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_baseline import (
    NewCountry,
    NewCountryConfig,
    ServicePrincipalNewNetwork,
    WorkloadConfig,
)
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.detect.rules.signals import signin
from hubsight.detect.settings import RuleExceptions
from hubsight.parsing.event import Event

HOUR = timedelta(hours=1)
DEVICE_CODE = "deviceCode"


@pytest.mark.parametrize("seed", range(40))
def test_episodes_answer_like_the_definition_in_any_order(seed: int) -> None:
    rng = random.Random(seed)
    horizon, lateness = 100.0, 20.0
    # Bursts of sightings with quiet gaps around the horizon, so episodes start, end and join.
    times: list[float] = []
    clock = 0.0
    for _ in range(rng.randint(3, 8)):
        clock += rng.choice((5.0, 60.0, 95.0, 105.0, 150.0)) * rng.random() * 2
        # Whole milliseconds: event times go through datetimes (microseconds) and back.
        times += [round(clock + rng.uniform(0, 15), 3) for _ in range(rng.randint(1, 4))]
    arrivals = sorted(times, key=lambda t: t + rng.uniform(0, lateness))
    baseline = UserBaseline()
    arrived: list[float] = []
    for ts in arrivals:
        baseline.observe("ip", "x", ts, horizon)
        arrived.append(ts)
        newest = max(arrived)
        # Rules ask about times from two latenesses back (settled sign-ins) to ahead.
        for q in [round(newest - 2 * lateness + step * 2.5, 3) for step in range(33)] + arrived:
            if q < newest - 2 * lateness:
                continue
            truth = any(q - horizon <= s < q for s in arrived)
            got = baseline.seen("ip", "x", from_epoch(q), timedelta(seconds=horizon))
            assert got == truth, (q, sorted(arrived))


def deliver(
    rule: Rule[Any],
    batches: Sequence[Sequence[Event]],
    *,
    path: Path | None = None,
    horizon: timedelta = timedelta(days=90),
    exceptions: Mapping[str, RuleExceptions] | None = None,
    learning: timedelta = timedelta(0),
) -> tuple[dict[str, Alert], list[str]]:
    """Final alerts of ``rule`` by dedup key, and the ids withdrawn on the way."""
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    engine = DetectionEngine(
        db,
        [rule],
        options=EngineOptions(
            learning=learning, baseline_horizon=horizon, persist=path is not None
        ),
        exceptions=exceptions,
    )
    final: dict[str, Alert] = {}
    withdrawn: list[str] = []
    for batch in batches:
        final.update((a.dedup_key, a) for a in engine.process(batch))
        withdrawn += engine.withdrawn
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final, withdrawn


def _view(alerts: dict[str, Alert]) -> dict[str, tuple[Any, ...]]:
    return {
        k: (a.first_event_time, a.last_event_time, tuple(a.evidence), a.source_ip)
        for k, a in alerts.items()
    }


def _in_order(rule: Rule[Any], events: Sequence[Event], **options: Any) -> dict[str, Alert]:
    return deliver(rule, [sorted(events, key=lambda e: e.timestamp)], **options)[0]


def _numbered(*events: Event) -> list[Event]:
    for offset, event in enumerate(events):
        event.source_offset = offset
    return list(events)


def test_a_late_earlier_sign_in_moves_the_new_country_notable_to_it() -> None:
    de, ng_later, ng_earlier = _numbered(
        signin(0, ip="203.0.113.1"),
        signin(600, country="NG", ip="102.89.0.2"),
        signin(300, country="NG", ip="102.89.0.1"),
    )
    rule = NewCountry(NewCountryConfig())
    final, withdrawn = deliver(rule, [[de], [ng_later], [ng_earlier]])

    (notable,) = final.values()
    assert notable.evidence == [EventRef.of(ng_earlier)]
    assert notable.first_event_time == notable.last_event_time == ng_earlier.timestamp
    assert notable.source_ip == "102.89.0.1"
    assert notable.baseline == "countries seen for this user in 90 days: DE; now: NG"
    # The same notable, updated: it keeps its id and is not created (or notified) again.
    assert notable.revision == 2
    assert withdrawn == []
    assert _view(final) == _view(_in_order(rule, [de, ng_later, ng_earlier]))


def test_a_notable_moving_to_an_earlier_dedup_bucket_leaves_no_second_one() -> None:
    de, ng_later, ng_earlier = _numbered(
        signin(0), signin(90, country="NG"), signin(50, country="NG")
    )
    rule = NewCountry(NewCountryConfig(dedup_minutes=60))
    first, _ = deliver(rule, [[de], [ng_later]])
    final, withdrawn = deliver(rule, [[de], [ng_later], [ng_earlier]])

    assert withdrawn == [a.id for a in first.values()]
    assert [a.evidence for a in final.values()] == [[EventRef.of(ng_earlier)]]
    assert _view(final) == _view(_in_order(rule, [de, ng_later, ng_earlier]))


def _gap_case() -> tuple[list[Event], Event]:
    """With a one-hour horizon, NG at 0 and 70 are both new; NG at 30 makes 70 not new."""
    events = _numbered(
        signin(-10),
        signin(0, country="NG"),
        signin(50),
        signin(70, country="NG"),
        signin(30, country="NG"),
    )
    return events[:-1], events[-1]


def test_a_late_sign_in_showing_the_country_known_withdraws_the_notable() -> None:
    on_time, late = _gap_case()
    rule = NewCountry(NewCountryConfig(dedup_minutes=30))
    before, _ = deliver(rule, [on_time], horizon=HOUR)
    final, withdrawn = deliver(rule, [on_time, [late]], horizon=HOUR)

    assert len(before) == 2
    assert [a.evidence for a in final.values()] == [[EventRef.of(on_time[1])]]
    assert withdrawn == [alert_id(k) for k in set(before) - set(final)]
    assert _view(final) == _view(_in_order(rule, [*on_time, late], horizon=HOUR))


def test_a_withdrawn_notable_someone_triaged_stays(tmp_path: Path) -> None:
    on_time, late = _gap_case()
    rule = NewCountry(NewCountryConfig(dedup_minutes=30))
    deliver(rule, [on_time], path=tmp_path, horizon=HOUR)
    db = DetectDB(tmp_path / "detect.sqlite3")
    store = AlertStore(db)
    later = next(a for a in store.find() if a.first_event_time == on_time[3].timestamp)
    store.update(later.id, actor="ann", status="investigating")
    untouched = next(a for a in store.find() if a.id != later.id)
    db.close()

    _, withdrawn = deliver(rule, [[late]], path=tmp_path, horizon=HOUR)

    db = DetectDB(tmp_path / "detect.sqlite3")
    assert withdrawn == [later.id]
    assert [(a.id, a.status) for a in AlertStore(db).find()] == [
        (later.id, "investigating"),
        (untouched.id, "open"),
    ]
    db.close()


def test_a_late_first_sign_in_gives_a_later_one_its_history() -> None:
    de, ng = _numbered(signin(0), signin(600, country="NG"))
    rule = NewCountry(NewCountryConfig())
    silent, _ = deliver(rule, [[ng]])
    final, _ = deliver(rule, [[ng], [de]])

    assert silent == {}
    assert [a.evidence for a in final.values()] == [[EventRef.of(ng)]]
    assert _view(final) == _view(_in_order(rule, [ng, de]))


def _sp(minute: float, ip: str, org: str) -> Event:
    return signin(
        minute,
        None,
        ip=ip,
        application="billing-sync",
        application_id="11111111-2222-3333-4444-555555555555",
        geoip_organization=org,
    )


def test_a_late_earlier_sign_in_moves_the_new_network_alert_to_it() -> None:
    home, later, earlier = _numbered(
        _sp(0, "20.1.1.1", "MICROSOFT-CORP"),
        _sp(60, "45.1.1.2", "EvilHost"),
        _sp(30, "45.1.1.1", "EvilHost"),
    )
    rule = ServicePrincipalNewNetwork(WorkloadConfig())
    final, _ = deliver(rule, [[home], [later], [earlier]])

    (alert,) = final.values()
    assert alert.evidence == [EventRef.of(earlier)]
    assert alert.source_ip == "45.1.1.1"
    assert alert.revision == 2
    assert _view(final) == _view(_in_order(rule, [home, later, earlier]))


def test_a_late_sign_in_from_a_known_network_withdraws_the_alert() -> None:
    on_time = _numbered(
        _sp(0, "20.1.1.1", "MICROSOFT-CORP"),
        _sp(30, "45.1.1.1", "EvilHost"),
        _sp(50, "20.1.1.1", "MICROSOFT-CORP"),
        _sp(90, "20.1.1.1", "MICROSOFT-CORP"),
        # More than the one-hour horizon after the first: new again...
        _sp(100, "45.1.1.2", "EvilHost"),
        # ...until a sign-in from that network in between arrives.
        _sp(80, "45.1.1.3", "EvilHost"),
    )
    late = on_time.pop()
    rule = ServicePrincipalNewNetwork(WorkloadConfig(dedup_minutes=30))
    before, _ = deliver(rule, [on_time], horizon=HOUR)
    final, withdrawn = deliver(rule, [on_time, [late]], horizon=HOUR)

    assert len(before) == 2
    assert [a.evidence for a in final.values()] == [[EventRef.of(on_time[1])]]
    assert len(withdrawn) == 1
    assert _view(final) == _view(_in_order(rule, [*on_time, late], horizon=HOUR))


def test_a_late_earlier_device_code_sign_in_moves_the_alert_to_it() -> None:
    later, earlier = _numbered(
        signin(60, authentication_protocol=DEVICE_CODE, ip="198.51.100.2"),
        signin(30, authentication_protocol=DEVICE_CODE, ip="198.51.100.1"),
    )
    rule = UnusualAuthFlow(FlowConfig())
    final, _ = deliver(rule, [[later], [earlier]])

    assert [(a.evidence, a.source_ip) for a in final.values()] == [
        ([EventRef.of(earlier)], "198.51.100.1")
    ]
    assert _view(final) == _view(_in_order(rule, [later, earlier]))


def test_a_late_device_code_sign_in_within_the_lookback_withdraws_the_next_alert() -> None:
    first, later, between = _numbered(
        signin(0, authentication_protocol=DEVICE_CODE),
        signin(25 * 60, authentication_protocol=DEVICE_CODE),
        signin(23 * 60, authentication_protocol=DEVICE_CODE),
    )
    rule = UnusualAuthFlow(FlowConfig(lookback_days=1))
    before, _ = deliver(rule, [[first], [later]])
    final, withdrawn = deliver(rule, [[first], [later], [between]])

    assert len(before) == 2
    assert [a.evidence for a in final.values()] == [[EventRef.of(first)]]
    assert len(withdrawn) == 1
    assert _view(final) == _view(_in_order(rule, [first, later, between]))


EXCEPTED_IP = "198.51.100.9"


@pytest.mark.parametrize(
    ("spec", "arrival", "notables"),
    [
        # The excepted sign-in from NG shows the later one was not the first from NG.
        (
            [(0, "DE", "203.0.113.1"), (600, "NG", EXCEPTED_IP), (1200, "NG", "102.89.0.1")],
            [0, 2, 1],
            0,
        ),
        # The excepted sign-in from DE gives the later NG one the history it lacked.
        ([(0, "DE", EXCEPTED_IP), (600, "NG", "102.89.0.1")], [1, 0], 1),
    ],
    ids=["shows-it-known", "gives-it-history"],
)
def test_a_late_excepted_sign_in_corrects_new_country_notables(
    spec: list[tuple[float, str, str]], arrival: list[int], notables: int
) -> None:
    events = _numbered(*(signin(m, country=c, ip=ip) for m, c, ip in spec))
    rule = NewCountry(NewCountryConfig())
    exceptions = {rule.meta.id: RuleExceptions(ips=(EXCEPTED_IP,))}
    final, _ = deliver(rule, [[events[i]] for i in arrival], exceptions=exceptions)

    expected = _in_order(rule, events, exceptions=exceptions)
    assert len(expected) == notables
    assert _view(final) == _view(expected)
    # The excepted sign-in itself is never cited.
    excepted = [EventRef.of(e) for e in events if e.source_ip == EXCEPTED_IP]
    assert not [ref for a in final.values() for ref in a.evidence if ref in excepted]


def test_a_late_excepted_sign_in_from_the_network_withdraws_the_new_network_alert() -> None:
    home, later, excepted = _numbered(
        _sp(0, "20.1.1.1", "MICROSOFT-CORP"),
        _sp(60, "45.1.1.2", "EvilHost"),
        _sp(30, "45.1.1.1", "EvilHost"),
    )
    rule = ServicePrincipalNewNetwork(WorkloadConfig())
    exceptions = {rule.meta.id: RuleExceptions(ips=("45.1.1.1",))}
    raised, _ = deliver(rule, [[home], [later]], exceptions=exceptions)
    final, withdrawn = deliver(rule, [[home], [later], [excepted]], exceptions=exceptions)

    assert len(raised) == 1
    assert final == {}
    assert withdrawn == [a.id for a in raised.values()]
    assert _in_order(rule, [home, later, excepted], exceptions=exceptions) == {}
