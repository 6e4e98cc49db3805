"""Alerts list the notables of their user from a week before to their last event, in any order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert, AlertFilter
from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    example_event,
)
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notables import relink
from hubsight.detect.rules.auth_baseline import (
    ImpossibleTravel,
    NewCountry,
    NewCountryConfig,
    TravelConfig,
)
from hubsight.detect.rules.signals import signin
from hubsight.parsing.event import Event, LogSet

from tests.support import LAGOS


def _events() -> tuple[list[Event], Event]:
    """With a one-hour horizon NG at 0 and 70 are both new, until NG at 30 arrives late.

    Berlin and Lagos minutes apart make impossible-travel alerts about the same user.
    """
    events = [
        signin(-10),
        signin(0, **LAGOS),
        signin(50),
        signin(70, **LAGOS),
        signin(30, **LAGOS),
    ]
    for offset, event in enumerate(events):
        event.source_offset = offset
    return events[:-1], events[-1]


def _deliver(batches: Sequence[Sequence[Event]], path: Path | None) -> dict[str, Alert]:
    final: dict[str, Alert] = {}
    engine = _engine(path)
    for batch in batches:
        final.update((a.dedup_key, a) for a in engine.process(batch))
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final


def _engine(path: Path | None) -> DetectionEngine:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    rules: list[Rule[Any]] = [
        NewCountry(NewCountryConfig(dedup_minutes=30)),
        ImpossibleTravel(TravelConfig()),
    ]
    options = EngineOptions(
        learning=timedelta(0), baseline_horizon=timedelta(hours=1), persist=path is not None
    )
    return DetectionEngine(db, rules, options=options)


def _notables(alerts: dict[str, Alert]) -> dict[str, list[str]]:
    return {k: a.context.get("notables", []) for k, a in alerts.items() if not a.notable}


@pytest.mark.parametrize("persist", [False, True], ids=["memory", "persisted"])
def test_a_withdrawn_notable_leaves_the_alerts_and_late_ones_join_them(
    persist: bool, tmp_path: Path
) -> None:
    on_time, late = _events()
    before = _deliver([on_time], tmp_path / "a" if persist else None)
    final = _deliver([on_time, [late]], tmp_path / "b" if persist else None)
    in_order = _deliver([sorted([*on_time, late], key=lambda e: e.timestamp)], None)

    notable_ids = {a.id for a in before.values() if a.notable}
    assert len(notable_ids) == 2
    # Before the late sign-in, the travel alert (both trips are one: their findings overlap)
    # lists both first sightings of NG.
    assert sorted(map(len, _notables(before).values())) == [2]
    (kept,) = [a.id for a in final.values() if a.notable]
    assert all(ids == [kept] for ids in _notables(final).values())
    assert _notables(final) == _notables(in_order)


def test_relink_takes_the_week_before_the_first_event_to_the_last() -> None:
    berlin, lagos = signin(0), signin(30, offset=1, **LAGOS)
    (alert,) = [a for a in _deliver([[berlin, lagos]], None).values() if not a.notable]
    start, end = alert.first_event_time, alert.last_event_time
    notables = {
        "week-before": start - timedelta(days=7),
        "too-early": start - timedelta(days=7, seconds=1),
        "during": end,
        "after": end + timedelta(seconds=1),
    }
    assert relink([alert], notables) == [alert]
    assert alert.context["notables"] == ["during", "week-before"]
    assert relink([alert], notables) == []
    assert relink([alert], {}) == [alert]
    assert "notables" not in alert.context
    # A user without notables leaves an alert that lists none as it was.
    assert relink([alert], {}) == []


class _Marks(Rule[RuleConfig]):
    """Reports every event whose operation is its mark, about the event's user."""

    mark = ""

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        if event.operation == self.mark and event.user:
            yield Finding(
                entity=event.user,
                title=self.mark,
                at=event.timestamp,
                evidence=[EventRef.of(event)],
                user=event.user,
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        return ()


def _marks(mark: str, *, notable: bool) -> _Marks:
    meta = RuleMeta(
        id=f"test.{mark}",
        title=mark,
        description=mark,
        severity=Severity.INFO if notable else Severity.MEDIUM,
        technique="T1078",
        log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
        runbook="-",
        notable=notable,
    )
    cls: type[_Marks] = type(f"Marks_{mark}", (_Marks,), {"meta": meta, "mark": mark})
    return cls(RuleConfig())


def test_a_notable_growing_past_an_alert_leaves_it() -> None:
    # One notable (its findings 20 minutes apart share its dedup window) ends after the alert:
    # its time is its last event's, so the alert at minute 10 does not list it.
    def event(minute: float, mark: str, offset: int) -> Event:
        return example_event(
            LogSet.CLOUD_SERVICE_ACTIVITY, minute, offset=offset, operation=mark, user="ann@x.com"
        )

    first, alert, joins = event(0, "note", 0), event(10, "alert", 1), event(20, "note", 2)
    rules: list[Rule[Any]] = [_marks("note", notable=True), _marks("alert", notable=False)]
    for order in ([first, alert, joins], [joins, alert, first], [alert, joins, first]):
        engine = DetectionEngine(
            DetectDB(Path(":memory:")), rules, options=EngineOptions(persist=False)
        )
        final: dict[str, Alert] = {}
        for one in order:
            final.update((a.dedup_key, a) for a in engine.process([one]))
        engine.close()
        (raised,) = [a for a in final.values() if a.rule_id == "test.alert"]
        assert "notables" not in raised.context, order


def test_a_notable_relinks_alerts_stored_before_a_restart(tmp_path: Path) -> None:
    def event(minute: int, mark: str) -> Event:
        return example_event(
            LogSet.CLOUD_SERVICE_ACTIVITY, minute, offset=minute, operation=mark, user="ann@x.com"
        )

    def engine() -> DetectionEngine:
        rules: list[Rule[Any]] = [_marks("note", notable=True), _marks("alert", notable=False)]
        options = EngineOptions(learning=timedelta(0))
        return DetectionEngine(DetectDB(tmp_path / "detect.sqlite3"), rules, options=options)

    first = engine()
    (stored,) = first.process([event(m, "alert") for m in range(5)])
    first.close()
    # After the restart the alert is in the database only; the notable's batch does not
    # touch it, yet it lists the notable.
    again = engine()
    changed = {a.rule_id: a for a in again.process([event(3, "note")])}
    found = {a.rule_id: a for a in again.alerts.find(AlertFilter(limit=10))}
    again.close()
    notable = changed["test.note"]
    assert changed["test.alert"].context["notables"] == [notable.id]
    assert found["test.alert"].context["notables"] == [notable.id]
    assert found["test.alert"].evidence == stored.evidence
    assert found["test.alert"].revision == stored.revision + 1
