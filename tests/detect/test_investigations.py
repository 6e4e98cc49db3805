"""Investigations: grouping by subject and window, triage, merge, split, bulk triage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubsight.detect.alerts import Alert, AlertStore, alert_id
from hubsight.detect.base import EventRef, Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.grouping import group_alerts, release_alerts, subjects
from hubsight.detect.investigations import InvestigationFilter, InvestigationStore, Triage
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.errors import ConfigError, NotFoundError

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)


def alert(
    key: str,
    at: datetime,
    *,
    user: str | None = None,
    ip: str | None = None,
    severity: Severity = Severity.MEDIUM,
    notable: bool = False,
    context: dict[str, object] | None = None,
) -> Alert:
    ref = EventRef(at, "SignInLogs", "hub", 0, int(at.timestamp()), 0, "Ingress Authentication")
    return Alert(
        id=alert_id(key),
        dedup_key=key,
        rule_id="test.rule",
        title=f"Alert {key}",
        severity=severity,
        notable=notable,
        technique="T1110",
        runbook="",
        first_event_time=at,
        last_event_time=at,
        evidence=[ref],
        user=user,
        source_ip=ip,
        context=context or {},
    )


@pytest.fixture
def db(tmp_path: Path) -> DetectDB:
    return DetectDB.in_dir(tmp_path)


def save(db: DetectDB, *alerts: Alert) -> list[str]:
    """Save alerts and group them as the engine does in one transaction."""
    with db.transaction() as conn:
        AlertStore(db).save(conn, alerts, time.time())
        return list(group_alerts(conn, alerts, WINDOW.total_seconds(), time.time()).values())


def test_subjects_name_user_address_and_azure_resources_only() -> None:
    resource = "/subscriptions/1/resourceGroups/RG/providers/x/vm1"
    found = subjects(
        alert("a", T0, user="Ana@Contoso.com", ip="203.0.113.7", context={"target": resource})
    )
    assert found == ["user:ana@contoso.com", "ip:203.0.113.7", f"resource:{resource.lower()}"]
    assert subjects(alert("b", T0, context={"target": "bob@contoso.com"})) == []


def test_same_user_within_window_groups_just_outside_does_not(db: DetectDB) -> None:
    first = alert("a", T0, user="ana@contoso.com")
    inside = alert("b", T0 + WINDOW, user="ana@contoso.com", severity=Severity.HIGH)
    outside = alert("c", T0 + 2 * WINDOW + timedelta(seconds=1), user="ana@contoso.com")
    opened = save(db, first) + save(db, inside) + save(db, outside)
    store = InvestigationStore(db)
    assert len(opened) == 2
    one, two = (store.get(i) for i in opened)
    assert (one.alert_count, two.alert_count) == (2, 1)
    # A higher-severity alert joining raises the priority.
    assert one.priority == "high"
    assert one.last_event_time == T0 + WINDOW
    assert one.title == "Alert a: ana@contoso.com"
    # A title that already names the subject is kept as it is.
    named = alert("d", T0, user="bob@contoso.com")
    named.title = "Bob@contoso.com signed in from a new country"
    (opened_for_bob,) = save(db, named)
    assert store.get(opened_for_bob).title == named.title


def test_shared_address_groups_other_users_and_notables_stay_out(db: DetectDB) -> None:
    opened = save(
        db,
        alert("a", T0, user="ana@contoso.com", ip="203.0.113.7"),
        alert("b", T0 + timedelta(hours=1), user="bob@contoso.com", ip="203.0.113.7"),
        alert("n", T0, user="ana@contoso.com", notable=True),
        alert("z", T0, user="zed@contoso.com"),
    )
    store = InvestigationStore(db)
    assert [store.get(i).alert_count for i in opened] == [2, 1]
    assert store.of_alert(alert_id("n")) is None


def test_closed_investigation_takes_no_new_alerts(db: DetectDB) -> None:
    (first,) = save(db, alert("a", T0, user="ana@contoso.com"))
    store = InvestigationStore(db)
    store.update(first, Triage(status="closed", disposition="benign"), actor="ana")
    (second,) = save(db, alert("b", T0 + timedelta(hours=1), user="ana@contoso.com"))
    assert second != first
    # Closing closed the alert too, with the disposition and a history line.
    closed = AlertStore(db).get(alert_id("a"))
    assert (closed.status, closed.disposition) == ("closed", "benign")


def test_updated_alert_stays_and_widens(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    later = alert("a", T0, user="ana@contoso.com")
    later.last_event_time = T0 + timedelta(hours=3)
    assert save(db, later) == []
    found = InvestigationStore(db).get(inv)
    assert (found.alert_count, found.last_event_time) == (1, T0 + timedelta(hours=3))


def test_updates_widen_before_a_new_alert_of_the_same_batch_is_matched(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    moved = alert("a", T0, user="ana@contoso.com", severity=Severity.HIGH)
    moved.last_event_time = T0 + timedelta(hours=30)
    # Within the window of the investigation only once ``moved`` stretched it.
    after = T0 + timedelta(hours=30) + WINDOW - timedelta(minutes=1)
    assert save(db, moved, alert("b", after, user="ana@contoso.com")) == []
    found = InvestigationStore(db).get(inv)
    assert (found.alert_count, found.priority) == (2, "high")
    assert (found.first_event_time, found.last_event_time) == (T0, after)
    # A lower severity leaves the priority as it is; an earlier event stretches the start.
    lower = alert("a", T0 - timedelta(hours=1), user="ana@contoso.com", severity=Severity.LOW)
    lower.last_event_time = T0 + timedelta(hours=30)
    assert save(db, lower) == []
    found = InvestigationStore(db).get(inv)
    assert (found.priority, found.first_event_time) == ("high", T0 - timedelta(hours=1))


def test_new_alerts_of_one_batch_widen_for_each_other_and_are_all_filed(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    joined = alert("b", T0 + WINDOW, user="ana@contoso.com", severity=Severity.HIGH)
    # Within the window of the investigation only once ``joined`` stretched it.
    after = T0 + 2 * WINDOW - timedelta(minutes=1)
    apart = alert("z", T0, user="zed@contoso.com")
    (other,) = save(db, joined, alert("c", after, user="ana@contoso.com"), apart)
    store = InvestigationStore(db)
    found = store.get(inv)
    assert (found.alert_count, found.priority) == (3, "high")
    assert (found.first_event_time, found.last_event_time) == (T0, after)
    linked = [store.of_alert(alert_id(k)) for k in "cz"]
    assert [i.id if i else None for i in linked] == [inv, other]
    added = db.rows(
        "SELECT investigation_id, detail FROM investigation_history "
        "WHERE action = 'alert added' ORDER BY rowid"
    )
    assert [(row[0], row[1].split()[0]) for row in added] == [
        (inv, alert_id("a")),
        (inv, alert_id("b")),
        (inv, alert_id("c")),
        (other, alert_id("z")),
    ]


def test_withdrawn_alert_leaves_and_untouched_empty_investigation_goes(db: DetectDB) -> None:
    (kept,) = save(db, alert("a", T0, user="ana@contoso.com"))
    (dropped,) = save(db, alert("b", T0, user="bob@contoso.com"))
    store = InvestigationStore(db)
    store.update(kept, Triage(comment="looking"), actor="ana")
    db.execute("DELETE FROM alerts")
    with db.transaction() as conn:
        release_alerts(conn, [alert_id("a"), alert_id("b")])
    assert store.get(kept).alert_count == 0
    with pytest.raises(NotFoundError):
        store.get(dropped)


def test_triage_history_filters_and_bad_values(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    save(db, alert("b", T0, user="bob@contoso.com"))
    store = InvestigationStore(db)
    store.update(
        inv,
        Triage(status="investigating", assignee="ana", priority="critical", comment="calling"),
        actor="ana",
    )
    assert [h["action"] for h in store.history(inv)] == [
        "alert added",
        "status",
        "assignee",
        "priority",
        "comment",
    ]
    assert [i.id for i in store.find(InvestigationFilter(assignee="ana"))] == [inv]
    assert [i.id for i in store.find(InvestigationFilter(text="ANA@con"))] == [inv]
    assert [i.id for i in store.find(InvestigationFilter(priority="critical"))] == [inv]
    assert len(store.find(InvestigationFilter(status="open"))) == 1
    assert store.find(InvestigationFilter(text="100%")) == []
    assert store.find(InvestigationFilter(since=T0 + timedelta(seconds=1))) == []
    with pytest.raises(ConfigError, match="unknown priority"):
        # A priority only untyped input (a request's JSON, a script) can carry.
        store.update(inv, Triage(priority="urgent"), actor="ana")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="title"):
        store.update(inv, Triage(title="  "), actor="ana")
    with pytest.raises(NotFoundError):
        store.get("inv-nope")


def test_merge_split_and_bulk_triage(db: DetectDB) -> None:
    (one,) = save(db, alert("a", T0, user="ana@contoso.com"))
    (two,) = save(db, alert("b", T0, user="bob@contoso.com", severity=Severity.CRITICAL))
    store = InvestigationStore(db)
    merged = store.merge(one, [two], actor="ana")
    assert (merged.alert_count, merged.priority) == (2, "critical")
    assert store.get(two).status == "closed"
    with pytest.raises(ConfigError):
        store.merge(one, [one], actor="ana")
    with pytest.raises(ConfigError, match="every alert"):
        store.split(one, [alert_id("a"), alert_id("b")], actor="ana")
    with pytest.raises(ConfigError, match="not in"):
        store.split(one, ["nope"], actor="ana")
    split = store.split(one, [alert_id("b")], actor="ana")
    assert [a.id for a in store.member_alerts(split.id)] == [alert_id("b")]
    # The source's priority falls back to what its remaining alerts warrant.
    assert (store.get(one).alert_count, store.get(one).priority) == (1, "medium")
    with pytest.raises(NotFoundError):
        store.triage_alerts([alert_id("a"), "nope"], actor="ana", status="closed")
    assert AlertStore(db).get(alert_id("a")).status == "open"
    changed = store.triage_alerts(
        [alert_id("a"), alert_id("b")], actor="ana", status="investigating"
    )
    assert [a.status for a in changed] == ["investigating", "investigating"]


def test_timeline_orders_alerts_notables_and_evidence(db: DetectDB) -> None:
    notable = alert("n", T0 - timedelta(hours=1), user="ana@contoso.com", notable=True)
    first = alert("a", T0, user="ana@contoso.com", context={"notables": [alert_id("n")]})
    second = alert("b", T0 + timedelta(hours=2), user="ana@contoso.com")
    second.evidence.append(first.evidence[0])
    (inv,) = save(db, notable, first, second)
    steps = [(e.kind, e.alert.dedup_key) for e in InvestigationStore(db).timeline(inv)]
    assert steps == [
        ("notable", "n"),
        ("alert", "a"),
        ("evidence", "a"),
        ("alert", "b"),
        ("evidence", "b"),
    ]
    shared = InvestigationStore(db).timeline(inv)[2]
    assert shared.cited_by == [alert_id("a"), alert_id("b")]


def test_engine_files_its_alerts(tmp_path: Path) -> None:
    rule = build_rule(BruteForceSuccess, {})
    engine = DetectionEngine(DetectDB.in_dir(tmp_path), [rule], options=EngineOptions())
    example = next(e for e in BruteForceSuccess.examples() if e.fires)
    (raised,) = engine.process(example.events)
    ((opener, opened),) = engine.opened_investigations.items()
    assert opener == raised.id
    engine.close()
    found = InvestigationStore(DetectDB.in_dir(tmp_path)).of_alert(raised.id)
    assert found is not None
    assert found.id == opened


def test_reopening_gives_back_the_alerts_closing_closed_and_only_those(db: DetectDB) -> None:
    ana = "ana@contoso.com"
    (inv,) = set(
        save(
            db,
            alert("by-hand", T0, user=ana),
            alert("open", T0 + timedelta(minutes=1), user=ana),
            alert("working", T0 + timedelta(minutes=2), user=ana),
            alert("triaged-since", T0 + timedelta(minutes=3), user=ana),
        )
    )
    alerts, store = AlertStore(db), InvestigationStore(db)
    alerts.update(alert_id("by-hand"), actor="bo", status="closed", disposition="false_positive")
    alerts.update(alert_id("working"), actor="bo", status="investigating", assignee="bo")
    store.update(inv, Triage(status="closed", disposition="malicious"), actor="ana")
    # Someone decides about one of them after the close: that decision is theirs to keep.
    alerts.update(alert_id("triaged-since"), actor="bo", disposition="benign")
    reopened = store.update(inv, Triage(status="investigating"), actor="cy")
    assert reopened.status == "investigating"
    now = {a.dedup_key: (a.status, a.disposition, a.assignee) for a in alerts.find()}
    assert now == {
        "by-hand": ("closed", "false_positive", None),
        "open": ("open", None, None),
        "working": ("investigating", None, "bo"),
        "triaged-since": ("closed", "benign", None),
    }
    history = alerts.history(alert_id("open"))
    assert [(h["actor"], h["action"], h["detail"]) for h in history[-3:]] == [
        ("cy", "status", "closed -> open"),
        ("cy", "disposition", "malicious -> (none)"),
        ("cy", "comment", f"reopened with investigation {inv}"),
    ]
    # Closed again and reopened again: the same alerts, remembered afresh.
    store.update(inv, Triage(status="closed", disposition="benign"), actor="ana")
    assert alerts.get(alert_id("open")).status == "closed"
    store.update(inv, Triage(status="open"), actor="ana")
    assert alerts.get(alert_id("open")).status == "open"
    assert alerts.get(alert_id("by-hand")).status == "closed"
    # Reopening an investigation that was never closed by its own triage changes no alert.
    store.update(inv, Triage(status="investigating"), actor="ana")
    assert alerts.get(alert_id("by-hand")).status == "closed"


def test_an_alert_split_off_after_the_close_is_not_reopened_with_it(db: DetectDB) -> None:
    ana = "ana@contoso.com"
    (inv,) = set(save(db, alert("a", T0, user=ana), alert("b", T0 + timedelta(hours=1), user=ana)))
    alerts, store = AlertStore(db), InvestigationStore(db)
    store.update(inv, Triage(status="closed", disposition="benign"), actor="ana")
    store.split(inv, [alert_id("b")], actor="ana")
    store.update(inv, Triage(status="open"), actor="ana")
    assert (alerts.get(alert_id("a")).status, alerts.get(alert_id("b")).status) == (
        "open",
        "closed",
    )
