"""``entra.pim_activation_unusual`` on records as the PIM service writes them: by event time in any
order, across restarts, after the learning period; and what an activation means to other rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.base import EventRef, RuleConfig
from hubsight.detect.db import DetectDB
from hubsight.detect.pim import ROLE_KIND
from hubsight.detect.rules.pim import PimActivationUnusual
from hubsight.detect.state import read_baseline
from hubsight.parsing.event import Event

from tests.detect.rules.test_delivered_records import (
    GLOBAL_ADMIN_ID,
    _fired,
    _records,
    pim_activation,
)
from tests.detect.test_order_baseline import deliver

MALLORY = "mallory@contoso.com"


def _at(tmp_path: Path, when: str, offset: int, **more: Any) -> Event:
    """Mallory's activation of Global Administrator at ``when`` (``properties`` time)."""
    (event,) = pim_activation(
        tmp_path,
        "Global Administrator",
        GLOBAL_ADMIN_ID,
        set={"properties.activityDateTime": when},
        **more,
    )
    event.source_offset = offset
    return event


def _deliver(
    batches: Sequence[Sequence[Event]],
    *,
    path: Path | None = None,
    learning: timedelta = timedelta(0),
) -> tuple[dict[str, Alert], list[str]]:
    """Final alerts of the rule by dedup key, and the ids withdrawn on the way."""
    return deliver(PimActivationUnusual(RuleConfig()), batches, path=path, learning=learning)


def test_a_late_earlier_activation_moves_the_alert_to_it(tmp_path: Path) -> None:
    later = _at(tmp_path, "2026-03-02T15:00:00.0000000Z", 1)
    earlier = _at(tmp_path, "2026-03-02T09:00:00.0000000Z", 2)
    final, withdrawn = _deliver([[later], [earlier]])
    in_order, _ = _deliver([[earlier, later]])

    assert [a.evidence for a in final.values()] == [[EventRef.of(earlier)]]
    assert [a.evidence for a in in_order.values()] == [[EventRef.of(earlier)]]
    assert len(withdrawn) == 1, "the later activation's alert is withdrawn"
    (alert,) = final.values()
    assert alert.user == MALLORY
    assert alert.source_ip == "203.0.113.77"
    assert alert.baseline == "roles this user activated in 90 days: none; now: Global Administrator"


def test_a_second_activation_adds_nothing_to_the_first_alert(tmp_path: Path) -> None:
    first = _at(tmp_path, "2026-03-02T09:00:00.0000000Z", 1)
    second = _at(tmp_path, "2026-03-02T09:30:00.0000000Z", 2)
    final, _ = _deliver([[first], [second]])
    assert [a.evidence for a in final.values()] == [[EventRef.of(first)]]


def test_what_was_activated_survives_a_restart(tmp_path: Path) -> None:
    first = _at(tmp_path, "2026-03-02T09:00:00.0000000Z", 1)
    second = _at(tmp_path, "2026-04-20T09:00:00.0000000Z", 2)
    before, _ = _deliver([[first]], path=tmp_path)
    assert len(before) == 1
    db = DetectDB(tmp_path / "detect.sqlite3")
    saved = read_baseline(db, MALLORY)
    db.close()
    assert saved.known(ROLE_KIND, second.timestamp, timedelta(days=90)) == ["Global Administrator"]

    after, _ = _deliver([[second]], path=tmp_path)
    assert after == {}, "activated 49 days before, remembered across the restart"


def test_activations_in_the_learning_period_are_learnt_not_alerted(tmp_path: Path) -> None:
    learnt = _at(tmp_path, "2026-03-02T09:00:00.0000000Z", 1)
    again = _at(tmp_path, "2026-03-20T09:00:00.0000000Z", 2)
    # Another user's activation starts the period a week earlier.
    start = pim_activation(
        tmp_path,
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        set={"properties.activityDateTime": "2026-02-24T09:00:00.0000000Z"},
    )
    final, _ = _deliver([start, [learnt], [again]], learning=timedelta(days=7))
    assert final == {}


def test_the_role_is_read_from_its_target_in_any_place(tmp_path: Path) -> None:
    # The parser's ``target_resource`` is the first target: here the user, not the role.
    (event,) = pim_activation(
        tmp_path,
        "Global Administrator",
        GLOBAL_ADMIN_ID,
        targets=[
            {
                "id": "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a",
                "displayName": "Mallory",
                "type": "User",
                "userPrincipalName": "Mallory@contoso.com",
            },
            {"id": GLOBAL_ADMIN_ID, "displayName": "Global Administrator", "type": "Role"},
        ],
    )
    assert event.target_resource == "Mallory"
    final, _ = _deliver([[event]])
    assert [a.title for a in final.values()] == [
        "mallory@contoso.com activated Global Administrator in PIM, not activated in 90 days before"
    ]


def test_an_activated_admin_changing_mfa_is_a_privileged_users_change(tmp_path: Path) -> None:
    activated = _at(tmp_path, "2026-03-02T09:00:00.0000000Z", 1)
    (method,) = _records(
        tmp_path,
        "audit",
        {
            "activity": "User registered security info",
            "audit_category": "UserManagement",
            "service": "Authentication Methods",
            "set": {"properties.activityDateTime": "2026-03-02T10:00:00.0000000Z"},
        },
    )
    method.source_offset = 2
    assert method.target_user == MALLORY
    assert "admin.privileged_mfa_changed" in _fired([activated, method])
    assert "admin.privileged_mfa_changed" not in _fired([method])


def test_a_refused_activation_teaches_nothing(tmp_path: Path) -> None:
    refused = _at(
        tmp_path,
        "2026-03-02T09:00:00.0000000Z",
        1,
        result="failure",
        reason="The role assignment request was not approved.",
    )
    granted = _at(tmp_path, "2026-03-02T11:00:00.0000000Z", 2)
    final, _ = _deliver([[refused], [granted]])
    assert [a.evidence for a in final.values()] == [[EventRef.of(granted)]]
