"""Case retention: which closed alerts and investigations go, when, and that nothing dangles.

Each case's "last changed" is read back from the database and the sweep is run at a ``now``
placed exactly on the cut-off or a second before it, so no clock is faked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from hubsight.detect.alerts import AlertStore
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.expiry import DAY_S, Chunk, Gone, Walk, expire_chunk, sweep, usage
from hubsight.detect.investigations import InvestigationStore, Triage
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.detect.sessions import Sessions

from tests.detect.test_investigations import T0, alert, save

DAYS = 30
# Every table that names an alert or an investigation, with the column that does.
ALERT_TABLES = ("alert_refs", "alert_history", "investigation_alerts",
                "investigation_closed_alerts", "notified", "dead_letters", "outbox")  # fmt: skip
INVESTIGATION_TABLES = ("investigation_alerts", "investigation_closed_alerts",
                        "investigation_subjects", "investigation_history")  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> DetectDB:
    return DetectDB.in_dir(tmp_path)


def changed(db: DetectDB, investigation: str) -> float:
    """When an investigation or any of its alerts last changed (row or history)."""
    (row,) = db.rows(
        "SELECT max(i.updated_at, coalesce((SELECT max(at) FROM investigation_history "
        "WHERE investigation_id = i.id), 0), coalesce((SELECT max(max(a.updated_at, "
        "coalesce((SELECT max(at) FROM alert_history WHERE alert_id = a.id), 0))) "
        "FROM alerts a JOIN investigation_alerts m ON m.alert_id = a.id "
        "WHERE m.investigation_id = i.id), 0)) AS at FROM investigations i WHERE i.id = ?",
        (investigation,),
    )
    return float(row["at"])


def chunk(db: DetectDB, days: int, now: float) -> tuple[list[Gone], int]:
    """One chunk from the start: what it deleted, and how many investigations."""
    done = expire_chunk(db, days, now)
    return done.gone, done.investigations


def ids(db: DetectDB, table: str) -> set[str]:
    return {r[0] for r in db.rows(f"SELECT id FROM {table}")}  # noqa: S608 - test's own names


def dangling(db: DetectDB) -> list[str]:
    """Rows naming an alert or an investigation that is not there."""
    found = []
    for table in ALERT_TABLES:
        n = db.rows(
            f"SELECT count(*) FROM {table} WHERE alert_id NOT IN (SELECT id FROM alerts)"  # noqa: S608
        )[0][0]
        found += [table] * n
    for table in INVESTIGATION_TABLES:
        n = db.rows(
            f"SELECT count(*) FROM {table} WHERE investigation_id "  # noqa: S608
            "NOT IN (SELECT id FROM investigations)"
        )[0][0]
        found += [table] * n
    return found


def close(db: DetectDB, investigation: str) -> None:
    InvestigationStore(db).update(
        investigation, Triage(status="closed", disposition="benign"), actor="ana"
    )


def test_a_closed_investigation_goes_exactly_n_days_after_it_last_changed(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    save(db, alert("b", T0 + timedelta(hours=1), user="ana@contoso.com"))
    close(db, inv)
    members = ids(db, "alerts")
    assert len(members) == 2
    at = changed(db, inv)
    gone, investigations = chunk(db, DAYS, at + DAYS * DAY_S - 1)
    assert (gone, investigations) == ([], 0)
    assert ids(db, "investigations") == {inv}
    gone, investigations = chunk(db, DAYS, at + DAYS * DAY_S)
    assert {g.id for g in gone} == members
    assert investigations == 1
    assert ids(db, "investigations") == set()
    assert ids(db, "alerts") == set()
    assert dangling(db) == []
    for table in ("alert_refs", "alert_history", "investigation_subjects", "investigation_history"):
        assert db.rows(f"SELECT count(*) FROM {table}")[0][0] == 0, table  # noqa: S608


def test_a_comment_after_closing_restarts_the_count(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    close(db, inv)
    closed_at = changed(db, inv)
    time.sleep(0.01)
    InvestigationStore(db).update(inv, Triage(comment="checked with Ana's manager"), actor="bo")
    assert changed(db, inv) > closed_at
    assert chunk(db, DAYS, closed_at + DAYS * DAY_S) == ([], 0)
    assert chunk(db, DAYS, changed(db, inv) + DAYS * DAY_S)[1] == 1


def test_open_and_in_progress_cases_are_never_deleted(db: DetectDB) -> None:
    (open_inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    (busy,) = save(db, alert("b", T0, user="bo@contoso.com"))
    InvestigationStore(db).update(busy, Triage(status="investigating"), actor="ana")
    far = time.time() + 10_000 * DAY_S
    assert chunk(db, 1, far) == ([], 0)
    assert ids(db, "investigations") == {open_inv, busy}
    assert len(ids(db, "alerts")) == 2


def test_a_closed_alert_in_an_open_investigation_is_kept(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    save(db, alert("b", T0 + timedelta(hours=1), user="ana@contoso.com"))
    first = next(iter(ids(db, "alerts")))
    AlertStore(db).update(first, actor="ana", status="closed", disposition="benign")
    far = time.time() + 10_000 * DAY_S
    assert chunk(db, 1, far) == ([], 0)
    assert first in ids(db, "alerts")
    # Closed, with one of its alerts opened again afterwards: kept whole.
    close(db, inv)
    AlertStore(db).update(first, actor="ana", status="open")
    assert chunk(db, 1, far) == ([], 0)
    assert ids(db, "investigations") == {inv}


def test_a_notable_goes_only_once_no_alert_lists_it(db: DetectDB) -> None:
    user = "ana@contoso.com"
    notable = alert("n", T0, user=user, notable=True)
    save(db, notable)
    (inv,) = save(
        db, alert("a", T0 + timedelta(days=1), user=user, context={"notables": [notable.id]})
    )
    AlertStore(db).update(notable.id, actor="ana", status="closed")
    far = time.time() + 10_000 * DAY_S
    assert chunk(db, 1, far) == ([], 0)
    assert notable.id in ids(db, "alerts")
    close(db, inv)
    gone, _ = chunk(db, 1, far)
    # In one chunk: the alert that listed it, then the notable.
    assert notable.id in {g.id for g in gone}
    assert ids(db, "alerts") == set()
    assert dangling(db) == []


def test_an_alert_with_a_notification_waiting_stays_until_it_is_sent(db: DetectDB) -> None:
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    (alert_id,) = ids(db, "alerts")
    db.execute(
        "INSERT INTO outbox (alert_id, channel, body, at) VALUES (?, 'soc', x'7b7d', 0)",
        (alert_id,),
    )
    db.execute("INSERT INTO notified VALUES (?, 'mail', 0)", (alert_id,))
    db.execute("INSERT INTO dead_letters VALUES (0, 'hook', ?, '{}', 'refused')", (alert_id,))
    close(db, inv)
    far = time.time() + 10_000 * DAY_S
    assert chunk(db, 1, far) == ([], 0)
    db.execute("DELETE FROM outbox")
    assert chunk(db, 1, far)[1] == 1
    assert dangling(db) == []
    assert db.rows("SELECT count(*) FROM notified")[0][0] == 0
    assert db.rows("SELECT count(*) FROM dead_letters")[0][0] == 0


def test_a_sweep_goes_in_chunks_and_stops_at_its_budget(db: DetectDB) -> None:
    for n in range(7):
        (inv,) = save(db, alert(f"a{n}", T0, user=f"u{n}@contoso.com"))
        close(db, inv)
    far = time.time() + 10_000 * DAY_S
    counted = usage(db, 1)
    assert (counted["alerts"], counted["investigations"]) == (7, 7)
    chunks: list[int] = []

    def between(step: Callable[[], Chunk]) -> Chunk:
        done = step()
        chunks.append(len(done.gone))
        return done

    walk = Walk()
    first = sweep(db, 1, far, walk=walk, between=between, budget_s=0, limit=3)
    assert (first.alerts, first.investigations, first.done) == (3, 3, False)
    rest = sweep(db, 1, far, walk=walk, between=between, limit=3)
    assert (rest.alerts, rest.investigations, rest.done) == (4, 4, True)
    assert chunks == [3, 3, 1]
    assert usage(db, 1)["alerts"] == 0


def test_sessions_forget_only_what_they_read() -> None:
    sessions = Sessions(None)
    sessions.set("rule|ana|1", (0.0, 1.0))
    sessions.forget("rule|ana|1")
    sessions.forget("rule|bo|1")
    assert sessions.spans("rule|ana|") == {}


def test_cases_triaged_before_this_release_count_from_their_history(db: DetectDB) -> None:
    # Triage did not move an alert's updated_at, nor a comment an investigation's: their last
    # history line says when they last changed.
    (inv,) = save(db, alert("a", T0, user="ana@contoso.com"))
    close(db, inv)
    (alert_id,) = ids(db, "alerts")
    at = changed(db, inv)
    for table, column, name in (
        ("alert_history", "alert_id", alert_id),
        ("investigation_history", "investigation_id", inv),
    ):
        db.execute(f"INSERT INTO {table} VALUES (?, ?, 'ana', 'comment', 'late')", (name, at + 9))  # noqa: S608
        assert chunk(db, DAYS, at + DAYS * DAY_S) == ([], 0), table
        db.execute(f"DELETE FROM {table} WHERE {column} = ? AND detail = 'late'", (name,))  # noqa: S608
    assert chunk(db, DAYS, at + DAYS * DAY_S)[1] == 1


def test_the_engine_forgets_what_it_deleted(tmp_path: Path) -> None:
    # The engine holds the alerts it saved; one deleted behind its back and then found again
    # must come back as a new alert, not as the old one (triage and all) from its memory.
    engine = DetectionEngine(
        DetectDB.in_dir(tmp_path), [build_rule(BruteForceSuccess, {})], options=EngineOptions()
    )
    events = next(e for e in BruteForceSuccess.examples() if e.fires).events
    (first,) = engine.process(events)
    (inv,) = ids(engine.db, "investigations")
    close(engine.db, inv)
    expired = engine.expire_cases(1, time.time() + 10_000 * DAY_S)
    assert (expired.alerts, expired.investigations, expired.done) == (1, 1, True)
    (again,) = engine.process(events)
    assert (again.id, again.revision, again.status) == (first.id, 1, "open")
    assert AlertStore(engine.db).get(first.id).status == "open"
    assert len(ids(engine.db, "investigations")) == 1
    assert dangling(engine.db) == []
    engine.close()


def test_a_chunk_looks_at_a_bounded_number_of_cases_and_the_walk_goes_on(db: DetectDB) -> None:
    # Closed alerts of an investigation still open stay, however many: a chunk looks at
    # ``limit`` of them and the next one goes on past them, to a notable that may go.
    (inv,) = save(db, *(alert(f"a{n}", T0, user="ana@contoso.com") for n in range(5)))
    for alert_id in sorted(ids(db, "alerts")):
        AlertStore(db).update(alert_id, actor="ana", status="closed")
        time.sleep(0.002)
    time.sleep(0.01)
    notable = alert("n", T0 - timedelta(days=30), user="bo@contoso.com", notable=True)
    save(db, notable)
    AlertStore(db).update(notable.id, actor="ana", status="closed")
    far = time.time() + 10_000 * DAY_S
    walk = Walk()
    steps = [expire_chunk(db, 1, far, limit=2, walk=walk) for _ in range(4)]
    # Six closed alerts, two a chunk: the fourth finds the end.
    assert [(len(s.gone), s.more) for s in steps] == [(0, True), (0, True), (1, True), (0, False)]
    assert steps[2].gone[0].id == notable.id
    assert walk == Walk()
    assert ids(db, "investigations") == {inv}
    assert len(ids(db, "alerts")) == 5
    assert dangling(db) == []
