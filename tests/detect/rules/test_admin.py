"""Admin-activity rules beyond their examples: what a privileged MFA change cites, and when."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hubsight.detect.alerts import Alert
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.admin import PrivilegedMfaChanged, PrivilegedRoleGranted
from hubsight.detect.rules.signals import admin
from hubsight.detect.ruleset import build_rule
from hubsight.parsing.event import Event

ROOT = "root@contoso.com"
DAY = 1440.0


def _grant(minute: float, offset: int) -> Event:
    return admin(
        minute,
        "Add member to role",
        offset=offset,
        target_user=ROOT,
        raw=PrivilegedRoleGranted.example_raw,
    )


def _change(minute: float, offset: int, user: str = ROOT) -> Event:
    return admin(
        minute, "User registered security info", offset=offset, user=user, target_user=user
    )


def _alerts(*batches: list[Event], **thresholds: object) -> list[Alert]:
    rule = build_rule(PrivilegedMfaChanged, dict(thresholds))
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        [rule],
        options=EngineOptions(persist=False, learning=timedelta(0)),
    )
    final: dict[str, Alert] = {}
    for batch in batches:
        for alert in engine.process(batch):
            final[alert.id] = alert
    engine.db.close()
    return list(final.values())


def test_the_grant_that_made_the_user_privileged_is_evidence_beside_the_change() -> None:
    (alert,) = _alerts([_grant(0, 1), _change(30, 2)])
    assert [ref.source_offset for ref in alert.evidence] == [1, 2]
    assert alert.user == ROOT


def test_a_grant_arriving_after_the_change_is_cited_too() -> None:
    (alert,) = _alerts([_change(30, 2)], [_grant(0, 1)])
    assert [ref.source_offset for ref in alert.evidence] == [1, 2]


def test_the_latest_grant_before_the_change_is_cited() -> None:
    (alert,) = _alerts([_grant(0, 1), _grant(10, 3), _change(30, 2)])
    assert [ref.source_offset for ref in alert.evidence] == [3, 2]


def test_a_change_remember_days_after_the_grant_fires_and_a_second_later_does_not() -> None:
    edge = _alerts([_grant(0, 1), _change(2 * DAY, 2)], remember_days=2)
    assert [ref.source_offset for ref in edge[0].evidence] == [1, 2]
    assert _alerts([_grant(0, 1), _change(2 * DAY + 1 / 60, 2)], remember_days=2) == []


def test_a_configured_privileged_user_fires_without_a_grant_and_cites_the_change_alone() -> None:
    (alert,) = _alerts([_change(30, 2)], privileged_users=["Root@Contoso.com"])
    assert [ref.source_offset for ref in alert.evidence] == [2]
    assert _alerts([_change(30, 2, user="bob@contoso.com")], privileged_users=[ROOT]) == []
