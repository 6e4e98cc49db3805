"""One thing, one alert: findings of a rule about one entity within its window join one alert.

The definition: a rule's findings about an entity, sorted by event time, are one alert while
each starts at most ``dedup_minutes`` after the alert's last event; the alert is keyed by the
bucket of ``dedup_minutes`` its first event falls in. Any arrival order gives these alerts; a
late finding that bridges two alerts merges them, and the one merged away is withdrawn with
a reason naming the alert it joined.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import MAX_EVIDENCE, Alert, AlertStore, alert_id
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
from hubsight.detect.outbox import WITHDRAWN, withdrawal_reason
from hubsight.detect.rules.thirdparty import PassthroughConfig, VendorAlert
from hubsight.detect.sessions import MERGED_INTO
from hubsight.parsing.event import Event, LogSet

WINDOW = 30  # minutes


class _Config(RuleConfig):
    dedup_minutes: int = WINDOW


class EveryEvent(Rule[_Config]):
    """Fires on every event, about its source address."""

    meta = RuleMeta(
        id="test.every_event",
        title="Every event",
        description="Test rule.",
        severity=Severity.MEDIUM,
        technique="T1110",
        log_sets=frozenset({LogSet.INGRESS_AUTHENTICATION}),
        runbook="-",
    )
    config_type = _Config

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """One finding per event."""
        ip = event.source_ip or ""
        yield Finding(
            entity=ip, title=f"From {ip}", at=event.timestamp, evidence=[EventRef.of(event)]
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """None: the tests below are its examples."""
        return ()


def _events(spec: Sequence[tuple[float, str]]) -> list[Event]:
    return [
        example_event(LogSet.INGRESS_AUTHENTICATION, minute, offset=i, source_ip=ip)
        for i, (minute, ip) in enumerate(spec)
    ]


def _run(
    batches: Sequence[Sequence[Event]], path: Path | None = None
) -> tuple[dict[str, Alert], list[Alert]]:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    options = EngineOptions(learning=timedelta(0), persist=path is not None)
    rule = EveryEvent(_Config())
    engine = DetectionEngine(db, [rule], options=options)
    final: dict[str, Alert] = {}
    withdrawn: list[Alert] = []
    for number, batch in enumerate(batches):
        if path is not None and number == len(batches) // 2:
            engine.close()
            engine = DetectionEngine(DetectDB(path / "detect.sqlite3"), [rule], options=options)
        final.update((a.dedup_key, a) for a in engine.process(batch))
        withdrawn += engine.withdrawn_alerts
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final, withdrawn


def _view(alerts: dict[str, Alert]) -> dict[str, Any]:
    return {
        k: (a.first_event_time, a.last_event_time, tuple(a.evidence)) for k, a in alerts.items()
    }


def _definition(events: Sequence[Event]) -> dict[str, set[EventRef]]:
    width = WINDOW * 60.0
    out: dict[str, set[EventRef]] = {}
    for ip in {e.source_ip for e in events}:
        mine = sorted((e for e in events if e.source_ip == ip), key=lambda e: e.timestamp)
        groups: list[list[Event]] = []
        for event in mine:
            if groups and (event.timestamp - groups[-1][-1].timestamp).total_seconds() <= width:
                groups[-1].append(event)
            else:
                groups.append([event])
        for group in groups:
            bucket = int(group[0].timestamp.timestamp() // width)
            out[f"{EveryEvent.meta.id}|{ip}|{bucket}"] = {EventRef.of(e) for e in group}
    return out


def test_findings_across_bucket_edges_are_one_alert() -> None:
    # 09:00 + 25, 50, 75 minutes: three buckets of 30 minutes, each step within the window.
    events = _events([(25, "198.51.100.7"), (50, "198.51.100.7"), (75, "198.51.100.7")])
    alerts, withdrawn = _run([[e] for e in events])
    (alert,) = alerts.values()
    assert alert.evidence == [EventRef.of(e) for e in events]
    assert (alert.first_event_time, alert.last_event_time) == (
        events[0].timestamp,
        events[2].timestamp,
    )
    assert withdrawn == []


@pytest.mark.parametrize(("gap", "alerts"), [(WINDOW, 1), (WINDOW + 0.01, 2)])
def test_the_window_edge(gap: float, alerts: int) -> None:
    events = _events([(0, "198.51.100.7"), (gap, "198.51.100.7")])
    assert len(_run([[e] for e in events])[0]) == alerts


def test_other_entities_stay_apart() -> None:
    events = _events([(0, "198.51.100.7"), (1, "203.0.113.9")])
    assert len(_run([events])[0]) == 2


def test_a_late_finding_between_two_alerts_merges_them(tmp_path: Path) -> None:
    events = _events([(0, "198.51.100.7"), (50, "198.51.100.7"), (25, "198.51.100.7")])
    alerts, withdrawn = _run([[events[0]], [events[1]], [events[2]]], tmp_path)
    (alert,) = alerts.values()
    assert set(alert.evidence) == {EventRef.of(e) for e in events}
    (gone,) = withdrawn
    assert gone.context[MERGED_INTO] == alert.id
    assert withdrawal_reason(gone, kept=False) == (
        f"merged into alert {alert.id}, of the same rule about the same entity within its window"
    )
    assert withdrawal_reason(alert, kept=False) == WITHDRAWN


def test_a_late_earlier_finding_moves_the_alert_to_its_bucket() -> None:
    # The alert is keyed by its first event's bucket, as in-order delivery keys it.
    events = _events([(40, "198.51.100.7"), (15, "198.51.100.7")])
    alerts, withdrawn = _run([[events[0]], [events[1]]])
    (key,) = alerts
    assert (
        key == f"{EveryEvent.meta.id}|198.51.100.7|{int(events[1].timestamp.timestamp() // 1800)}"
    )
    assert [a.context[MERGED_INTO] for a in withdrawn] == [alert_id(key)]


@pytest.mark.parametrize("seed", range(12))
def test_any_arrival_order_gives_the_alerts_of_the_definition(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ips = ("198.51.100.7", "203.0.113.9")
    events = _events([(round(rng.uniform(0, 240), 2), rng.choice(ips)) for _ in range(16)])
    in_order, _ = _run([[e] for e in sorted(events, key=lambda e: e.timestamp)])
    assert {k: set(a.evidence) for k, a in in_order.items()} == _definition(events)
    shuffled = events[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 3] for i in range(0, len(shuffled), 3)]
    late, _ = _run(batches, tmp_path)
    assert _view(late) == _view(in_order)


def _defender(minute: float, alert_id: str, resource: str, offset: int) -> Event:
    return example_event(
        LogSet.THIRD_PARTY_ALERTS,
        minute,
        offset=offset,
        alert_id=alert_id,
        alert_name="Access from a suspicious IP address",
        compromised_entity=resource,
        severity="MEDIUM",
        vendor="Microsoft",
        product="Defender for Cloud",
    )


def test_a_vendors_alerts_of_one_kind_on_one_resource_within_a_day_are_one() -> None:
    alerts = [
        _defender(minute, f"2517{i}_a1", "stcontosodata", i)
        for i, minute in enumerate((0, 90, 600, 1400))
    ]
    other = _defender(30, "2517_b2", "stcontosologs", 9)
    next_day = _defender(1400 + 24 * 60 + 1, "2517_c3", "stcontosodata", 10)
    engine = DetectionEngine(
        DetectDB(Path(":memory:")), [VendorAlert(PassthroughConfig())], options=EngineOptions()
    )
    raised = {a.dedup_key: a for a in engine.process([*alerts, other, next_day])}
    by_resource = sorted((a.title, len(a.evidence)) for a in raised.values())
    assert by_resource == [
        ("Microsoft: Access from a suspicious IP address (stcontosodata)", 1),
        ("Microsoft: Access from a suspicious IP address (stcontosodata)", 4),
        ("Microsoft: Access from a suspicious IP address (stcontosologs)", 1),
    ]


def test_a_merged_vendor_alert_keeps_every_vendor_alert_id(tmp_path: Path) -> None:
    # Batches apart, so the alert is read back from the database between them; the second
    # "2517_a1" is the vendor's update of the first (listed once); "2517_d4" arrives late and
    # bridges the two alerts 23 and 46 hours apart, which merge.
    batches = [
        [_defender(0, "2517_a1", "stcontosodata", 0)],
        [
            _defender(60, "2517_b2", "stcontosodata", 1),
            _defender(61, "2517_a1", "stcontosodata", 2),
        ],
        [_defender(46 * 60, "2517_c3", "stcontosodata", 3)],
        [_defender(23 * 60, "2517_d4", "stcontosodata", 4)],
    ]
    engine = DetectionEngine(
        DetectDB(tmp_path / "detect.sqlite3"), [VendorAlert(PassthroughConfig())]
    )
    raised: dict[str, Alert] = {}
    for batch in batches:
        raised.update((a.dedup_key, a) for a in engine.process(batch))
        for gone in engine.withdrawn_alerts:
            raised.pop(gone.dedup_key, None)
    (alert,) = raised.values()
    assert alert.context["vendor_alert_ids"] == ["2517_a1", "2517_b2", "2517_d4", "2517_c3"]
    assert len(alert.evidence) == 5


def test_an_alert_with_full_evidence_still_moves_its_last_event_and_revision(
    tmp_path: Path,
) -> None:
    # One event every 6 seconds: a full list of evidence, then batches whose events fall off
    # its end and change only when the alert's events end.
    events = _events([(i / 10, "198.51.100.7") for i in range(MAX_EVIDENCE + 3)])
    path = tmp_path / "detect.sqlite3"
    engine = DetectionEngine(
        DetectDB(path), [EveryEvent(_Config())], options=EngineOptions(learning=timedelta(0))
    )
    (full,) = engine.process(events[:MAX_EVIDENCE])
    revision = full.revision
    for number, event in enumerate(events[MAX_EVIDENCE:], start=1):
        (alert,) = engine.process([event])
        assert alert.evidence == full.evidence
        assert alert.last_event_time == event.timestamp
        assert alert.revision == revision + number
    engine.close()
    stored = AlertStore(DetectDB(path)).get(full.id)
    assert (stored.evidence, stored.last_event_time) == (full.evidence, events[-1].timestamp)
    assert stored.revision == revision + 3
    # What ``process`` returned before stays as it was.
    assert full.last_event_time == events[MAX_EVIDENCE - 1].timestamp
