"""How alerts are stored: the body and the evidence apart, the evidence written when it changed.

An alert is read back with every event reference it had when saved, whatever batches its
evidence came in, after restarts, retractions, a failed save, and from databases written
before the evidence had a table of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from hubsight.detect.alerts import MAX_EVIDENCE, Alert, AlertFilter, AlertStore
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
from hubsight.detect.db import SCHEMA_VERSION, DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.errors import StoreError
from hubsight.parsing.event import Event, LogSet


class _Config(RuleConfig):
    # Every event of a test lands on one alert.
    dedup_minutes: int = 100_000


class Cites(Rule[_Config]):
    """Cites every sign-in; an ``undo M`` one takes back the sign-in of minute M."""

    meta = RuleMeta(
        id="test.cites",
        title="Cites",
        description="Test rule.",
        severity=Severity.MEDIUM,
        technique="T1110",
        log_sets=frozenset({LogSet.INGRESS_AUTHENTICATION}),
        runbook="-",
    )
    config_type = _Config

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """A finding per event, or the retraction of an earlier one."""
        if event.operation and event.operation.startswith("undo "):
            gone = _ref(int(event.operation.split()[1]))
            yield Finding(
                entity="e", title="Cites", at=gone.timestamp, evidence=[gone], retract=True
            )
        else:
            yield Finding(
                entity="e", title="Cites", at=event.timestamp, evidence=[EventRef.of(event)]
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """None: the tests below are its examples."""
        return ()


def _event(minute: int) -> Event:
    return example_event(LogSet.INGRESS_AUTHENTICATION, minute, offset=minute)


def _ref(minute: int) -> EventRef:
    return EventRef.of(_event(minute))


def _undo(minute: int, at: int) -> Event:
    return example_event(
        LogSet.INGRESS_AUTHENTICATION, at, offset=10_000 + minute, operation=f"undo {minute}"
    )


def _engine(path: Path) -> DetectionEngine:
    options = EngineOptions(learning=timedelta(0))
    return DetectionEngine(DetectDB(path / "detect.sqlite3"), [Cites(_Config())], options=options)


def _stored(path: Path) -> list[Alert]:
    db = DetectDB(path / "detect.sqlite3")
    try:
        return AlertStore(db).find(AlertFilter(limit=100))
    finally:
        db.close()


def _minutes(alert: Alert) -> list[int]:
    return [int(ref.source_offset or 0) for ref in alert.evidence]


def test_evidence_gathered_over_batches_and_restarts_is_all_read_back(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(5)])
    engine.process([_event(m) for m in range(5, 10)])
    engine.close()
    assert _parts(tmp_path) == [(0, list(range(5))), (5, list(range(5, 10)))]
    again = _engine(tmp_path)
    # After the restart the alert is read from the database: later events join it.
    again.process([_event(11)])
    assert _stored(tmp_path)[0].evidence == [_ref(m) for m in [*range(10), 11]]
    # And earlier ones.
    (returned,) = again.process([_event(12), _event(-1)])
    again.close()
    want = [-1, *range(10), 11, 12]
    assert _minutes(returned) == want
    (stored,) = _stored(tmp_path)
    # Appended in parts while the events came after the alert's last; written again whole
    # from 0 when an earlier one came.
    assert _parts(tmp_path) == [(0, want)]
    assert stored.evidence == returned.evidence
    assert (stored.first_event_time, stored.last_event_time) == (
        _ref(-1).timestamp,
        _ref(12).timestamp,
    )
    assert stored.revision == 4


def _parts(path: Path) -> list[tuple[int, list[int]]]:
    with sqlite3.connect(path / "detect.sqlite3") as db:
        rows = db.execute("SELECT start, refs FROM alert_refs ORDER BY start").fetchall()
    db.close()
    decode = msgspec.json.Decoder(list[EventRef]).decode
    return [(start, [int(r.source_offset or 0) for r in decode(refs)]) for start, refs in rows]


def _count_evidence_writes(engine: DetectionEngine) -> None:
    engine.db.execute("CREATE TEMP TABLE written (alert_id TEXT)")
    engine.db.execute(
        "CREATE TEMP TRIGGER count_inserts AFTER INSERT ON alert_refs "
        "BEGIN INSERT INTO written VALUES (new.alert_id); END"
    )
    engine.db.execute(
        "CREATE TEMP TRIGGER count_updates AFTER UPDATE ON alert_refs "
        "BEGIN INSERT INTO written VALUES (new.alert_id); END"
    )


def test_a_batch_that_moves_a_full_alert_but_not_its_evidence_writes_its_body_only(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    _count_evidence_writes(engine)
    (full,) = engine.process([_event(m) for m in range(MAX_EVIDENCE)])
    # Later events fall off the end of a full list: the alert's last event moves, not its evidence.
    (later,) = engine.process([_event(MAX_EVIDENCE + 5)])
    assert later.last_event_time == _ref(MAX_EVIDENCE + 5).timestamp
    assert later.evidence == full.evidence
    # An earlier event changes the evidence: written again.
    (earlier,) = engine.process([_event(-1)])
    written = [str(row["alert_id"]) for row in engine.db.rows("SELECT alert_id FROM written")]
    assert written == [full.id, full.id]
    engine.close()
    (stored,) = _stored(tmp_path)
    assert _minutes(stored) == list(range(-1, MAX_EVIDENCE - 1))
    assert stored.last_event_time == later.last_event_time
    assert stored.evidence == earlier.evidence


def test_retractions_after_partial_saves_and_a_restart(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(4)])
    engine.process([_event(m) for m in range(4, 8)])
    (alert,) = engine.process([_undo(2, at=9), _undo(6, at=9)])
    assert _minutes(alert) == [0, 1, 3, 4, 5, 7]
    engine.close()
    (stored,) = _stored(tmp_path)
    assert stored.evidence == alert.evidence
    again = _engine(tmp_path)
    (alert,) = again.process([_undo(0, at=10), _undo(7, at=10)])
    assert _minutes(alert) == [1, 3, 4, 5]
    assert (alert.first_event_time, alert.last_event_time) == (_ref(1).timestamp, _ref(5).timestamp)
    assert again.process([_undo(m, at=11) for m in (1, 3, 4, 5)]) == []
    assert again.withdrawn == [alert.id]
    # Withdrawn and deleted: its evidence went with it.
    assert again.db.rows("SELECT alert_id FROM alert_refs") == []
    again.close()
    assert _stored(tmp_path) == []


def test_a_failed_save_is_saved_with_the_next_batch(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(1, MAX_EVIDENCE + 1)])
    save = engine.alerts.save

    def failing(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    engine.alerts.save = failing  # type: ignore[method-assign]
    # An earlier event changes the evidence; the batch is not saved.
    with pytest.raises(StoreError):
        engine.process([_event(0)])
    engine.alerts.save = save  # type: ignore[method-assign]
    # The next batch's save holds the failed one's evidence too: written again whole, as the
    # stored evidence (not the unsaved) is what it is compared with.
    (alert,) = engine.process([_event(MAX_EVIDENCE + 7)])
    engine.close()
    (stored,) = _stored(tmp_path)
    assert _minutes(stored) == list(range(MAX_EVIDENCE))
    assert stored.evidence == alert.evidence
    assert stored.first_event_time == _ref(0).timestamp == alert.first_event_time
    assert stored.last_event_time == _ref(MAX_EVIDENCE + 7).timestamp
    # One revision per save that changed it: the failed one was never seen.
    assert stored.revision == alert.revision == 2


@pytest.mark.parametrize("schema", [1, 2])
def test_alerts_stored_by_earlier_schemas_are_moved_and_read(schema: int, tmp_path: Path) -> None:
    path = tmp_path / "detect.sqlite3"
    engine = _engine(tmp_path)
    (alert,) = engine.process([_event(m) for m in range(3)])
    engine.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM alert_refs")
        if schema == 1:
            # The evidence inside the body.
            db.execute("UPDATE alerts SET body = ?", (msgspec.json.encode(alert),))
        else:
            # The evidence whole in a table of its own.
            db.execute("CREATE TABLE alert_evidence (alert_id TEXT PRIMARY KEY, refs BLOB)")
            db.execute(
                "INSERT INTO alert_evidence VALUES (?, ?)",
                (alert.id, msgspec.json.encode(alert.evidence)),
            )
        db.execute(f"PRAGMA user_version = {schema}")
    db.close()
    (read,) = _stored(tmp_path)
    assert read.evidence == alert.evidence
    with sqlite3.connect(path) as db:
        (body,) = db.execute("SELECT body FROM alerts").fetchone()
        assert msgspec.json.decode(body)["evidence"] == []
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'alert_evidence'").fetchall()
            == []
        )
    db.close()
    again = _engine(tmp_path)
    (moved,) = again.process([_event(5)])
    again.close()
    assert _minutes(moved) == [0, 1, 2, 5]
    assert _stored(tmp_path)[0].evidence == moved.evidence


def test_alerts_are_read_by_many_dedup_keys_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(3)])
    engine.close()
    (alert,) = _stored(tmp_path)
    # 501 alerts: past the 500 keys one query asks for, each with its own evidence.
    copies = [
        msgspec.structs.replace(alert, id=f"id-{n}", dedup_key=f"key-{n}", evidence=[_ref(n)])
        for n in range(501)
    ]
    db = DetectDB(tmp_path / "detect.sqlite3")
    try:
        store = AlertStore(db)
        with db.transaction() as conn:
            store.save(conn, copies, 0.0)
        keys = ["key-500", "nowhere", *(f"key-{n}" for n in range(500)), alert.dedup_key]
        found = {a.dedup_key: a for a in store.by_dedup_keys(keys)}
    finally:
        db.close()
    assert set(found) == {alert.dedup_key, *(f"key-{n}" for n in range(501))}
    assert all(found[f"key-{n}"].evidence == [_ref(n)] for n in range(501))
    assert found[alert.dedup_key].evidence == alert.evidence
