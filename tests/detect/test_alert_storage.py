"""How alerts are stored: the body and the evidence apart, the evidence written when it changed.

An alert is read back with every event reference it had when saved, whatever batches its
evidence came in, after restarts, retractions, a failed save, and from databases written
before the evidence had a table of its own.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from hubsight.detect.alerts import MAX_EVIDENCE, Alert, AlertFilter, AlertStore
from hubsight.detect.base import (
    EventRef,
    example_event,
)
from hubsight.detect.db import PART_REFS, SCHEMA_VERSION, DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.errors import StoreError
from hubsight.parsing.event import Event, LogSet

from tests.detect.cites import Cites, CitesConfig, event, ref

FIXTURES = Path(__file__).parents[1] / "data/datadirs"


def _event(minute: int) -> Event:
    return event(minute)


def _ref(minute: int) -> EventRef:
    return ref(minute)


def _undo(minute: int, at: int) -> Event:
    return example_event(
        LogSet.INGRESS_AUTHENTICATION, at, offset=10_000 + minute, operation=f"undo {minute}"
    )


def _engine(path: Path) -> DetectionEngine:
    options = EngineOptions(learning=timedelta(0))
    return DetectionEngine(
        DetectDB(path / "detect.sqlite3"), [Cites(CitesConfig())], options=options
    )


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
    # Fewer refs than a part holds: all in the alert's row.
    engine.process([_event(m) for m in range(PART_REFS - 3)])
    assert _parts(tmp_path) == []
    assert _tails(tmp_path) == [list(range(PART_REFS - 3))]
    # A part is appended once the tail fills; the rest stays in the tail.
    engine.process([_event(m) for m in range(PART_REFS - 3, PART_REFS + 2)])
    engine.close()
    assert _parts(tmp_path) == [(0, list(range(PART_REFS)))]
    assert _tails(tmp_path) == [[PART_REFS, PART_REFS + 1]]
    again = _engine(tmp_path)
    # After the restart the alert is read from the database: later events join it, the tail
    # reaching exactly a part's worth (``2 * PART_REFS`` refs: an empty tail).
    again.process([_event(m) for m in range(PART_REFS + 2, 2 * PART_REFS)])
    assert _parts(tmp_path) == [
        (0, list(range(PART_REFS))),
        (PART_REFS, list(range(PART_REFS, 2 * PART_REFS))),
    ]
    assert _tails(tmp_path) == [[]]
    again.process([_event(2 * PART_REFS)])
    assert _stored(tmp_path)[0].evidence == [_ref(m) for m in range(2 * PART_REFS + 1)]
    # And earlier ones.
    (returned,) = again.process([_event(2 * PART_REFS + 1), _event(-1)])
    again.close()
    want = [-1, *range(2 * PART_REFS + 2)]
    assert _minutes(returned) == want
    (stored,) = _stored(tmp_path)
    # Appended in parts while the events came after the alert's last; written again whole
    # from 0 when an earlier one came.
    assert _parts(tmp_path) == [(0, want[: 2 * PART_REFS])]
    assert _tails(tmp_path) == [want[2 * PART_REFS :]]
    assert stored.evidence == returned.evidence
    assert (stored.first_event_time, stored.last_event_time) == (
        _ref(-1).timestamp,
        _ref(2 * PART_REFS + 1).timestamp,
    )
    assert stored.revision == 5


def _offsets(refs: bytes) -> list[int]:
    return [int(r.source_offset or 0) for r in msgspec.json.Decoder(list[EventRef]).decode(refs)]


def _parts(path: Path) -> list[tuple[int, list[int]]]:
    with sqlite3.connect(path / "detect.sqlite3") as db:
        rows = db.execute("SELECT start, refs FROM alert_refs ORDER BY alert_id, start").fetchall()
    db.close()
    return [(start, _offsets(refs)) for start, refs in rows]


def _tails(path: Path) -> list[list[int]]:
    with sqlite3.connect(path / "detect.sqlite3") as db:
        rows = db.execute("SELECT tail FROM alerts ORDER BY id").fetchall()
    db.close()
    return [_offsets(tail) for (tail,) in rows]


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


@pytest.mark.parametrize("later", [PART_REFS + 3, MAX_EVIDENCE + 5])
def test_an_alert_deleted_behind_the_engines_back_is_written_whole_again(
    later: int, tmp_path: Path
) -> None:
    engine = _engine(tmp_path)
    # Stored, then deleted by someone else: the engine still holds it as stored. The next
    # batch appends to its evidence (``later`` past a part), or only moves its last event
    # (a full list).
    count = MAX_EVIDENCE if later > MAX_EVIDENCE else PART_REFS + 2
    engine.process([_event(m) for m in range(count)])
    other = DetectDB(tmp_path / "detect.sqlite3")
    other.execute("DELETE FROM alerts")
    other.close()
    (returned,) = engine.process([_event(later)])
    engine.close()
    (stored,) = _stored(tmp_path)
    assert stored.evidence == returned.evidence
    assert stored.last_event_time == _ref(later).timestamp
    assert stored.revision == returned.revision == 2


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


def test_a_failed_save_is_saved_with_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(1, MAX_EVIDENCE + 1)])
    save = engine.alerts.save

    def failing(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(engine.alerts, "save", failing)
    # An earlier event changes the evidence; the batch is not saved.
    with pytest.raises(StoreError):
        engine.process([_event(0)])
    monkeypatch.setattr(engine.alerts, "save", save)
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


@pytest.mark.parametrize("schema", [1, 2, 3])
def test_alerts_stored_by_earlier_schemas_are_moved_and_read(schema: int, tmp_path: Path) -> None:
    path = tmp_path / "detect.sqlite3"
    engine = _engine(tmp_path)
    count = PART_REFS + 3
    (alert,) = engine.process([_event(m) for m in range(count)])
    engine.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM alert_refs")
        db.execute("UPDATE alerts SET tail = NULL")
        if schema == 1:
            # The evidence inside the body.
            db.execute("UPDATE alerts SET body = ?", (msgspec.json.encode(alert),))
        elif schema == 2:
            # The evidence whole in a table of its own.
            db.execute("CREATE TABLE alert_evidence (alert_id TEXT PRIMARY KEY, refs BLOB)")
            db.execute(
                "INSERT INTO alert_evidence VALUES (?, ?)",
                (alert.id, msgspec.json.encode(alert.evidence)),
            )
        else:
            # All of it in parts, of whatever size the batches gave them.
            db.executemany(
                "INSERT INTO alert_refs VALUES (?, ?, ?)",
                [
                    (alert.id, 0, msgspec.json.encode(alert.evidence[:2])),
                    (alert.id, 2, msgspec.json.encode(alert.evidence[2:])),
                ],
            )
        db.execute(f"PRAGMA user_version = {schema}")
    db.close()
    (read,) = _stored(tmp_path)
    assert read.evidence == alert.evidence
    assert _parts(tmp_path) == [(0, list(range(PART_REFS)))]
    assert _tails(tmp_path) == [list(range(PART_REFS, count))]
    with sqlite3.connect(path) as db:
        (body,) = db.execute("SELECT body FROM alerts").fetchone()
        assert msgspec.json.decode(body)["evidence"] == []
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'alert_evidence'").fetchall()
            == []
        )
    db.close()
    again = _engine(tmp_path)
    (moved,) = again.process([_event(count + 2)])
    again.close()
    assert _minutes(moved) == [*range(count), count + 2]
    assert _stored(tmp_path)[0].evidence == moved.evidence


@pytest.mark.parametrize("schema", [3, 4])
def test_a_detection_database_written_by_an_earlier_schema_opens_and_keeps_its_alerts(
    schema: int, tmp_path: Path
) -> None:
    # Written by that schema's release's own engine (scripts/make-detect-fixture.py: 0d1ec6a,
    # 476cb5f): two alerts of the rule Cites with 30-minute sessions, one with its evidence in
    # two parts, one in one; alerts.json as that release read them back.
    with tarfile.open(FIXTURES / f"detect-{schema}-evidence.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    before = json.loads((data / "alerts.json").read_text())
    with sqlite3.connect(data / "detect.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema
        assert len(db.execute("SELECT * FROM alert_refs").fetchall()) == 3
    db.close()
    assert [a.summary() for a in _stored(data)] == before
    # Laid out as this release writes: whole parts of PART_REFS, the rest in the row.
    sizes = sorted(len(a["evidence"]) for a in before)
    assert sizes == [3, 22]
    assert sorted(len(tail) for tail in _tails(data)) == [3, 22 % PART_REFS]
    assert [(start, len(refs)) for start, refs in _parts(data)] == [(0, 22 - 22 % PART_REFS)]
    # Detection goes on with them: a later sign-in joins the larger alert, and is stored.
    engine = DetectionEngine(
        DetectDB(data / "detect.sqlite3"),
        [Cites(CitesConfig(dedup_minutes=30))],
        options=EngineOptions(learning=timedelta(0)),
    )
    (joined,) = engine.process([_event(21)])
    engine.close()
    large = next(a for a in before if len(a["evidence"]) == 22)
    assert joined.id == large["id"]
    assert [r.as_dict() for r in joined.evidence[:-1]] == large["evidence"]
    assert joined.evidence[-1] == _ref(21)
    assert {a.id: a.evidence for a in _stored(data)}[joined.id] == joined.evidence


def test_a_database_of_this_schema_opens_without_looking_for_older_layouts(
    tmp_path: Path,
) -> None:
    # Looking for alerts without a tail read every alert's row at each start. An alert of this
    # schema always has one: emptied here by hand, it shows that no opening looked.
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(3)])
    engine.close()
    with sqlite3.connect(tmp_path / "detect.sqlite3") as db:
        db.execute("UPDATE alerts SET tail = NULL")
    db.close()
    DetectDB(tmp_path / "detect.sqlite3").close()
    with sqlite3.connect(tmp_path / "detect.sqlite3") as db:
        assert db.execute("SELECT tail FROM alerts").fetchall() == [(None,)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_an_upgrade_cut_short_is_undone_whole_and_made_again(tmp_path: Path) -> None:
    with tarfile.open(FIXTURES / "detect-4-evidence.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    path = data / "detect.sqlite3"
    before = json.loads((data / "alerts.json").read_text())
    # The move fails at the second of the two alerts, after the first was moved.
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER cut_short BEFORE UPDATE ON alerts "
            "WHEN old.id = (SELECT max(id) FROM alerts) BEGIN SELECT RAISE(ABORT, 'cut'); END"
        )
    db.close()
    with pytest.raises(StoreError, match="cannot open the detection database"):
        DetectDB(path)
    with sqlite3.connect(path) as db:
        # Still schema 4 as it was: no tail column, the evidence in its three parts.
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert "tail" not in {column[1] for column in db.execute("PRAGMA table_info(alerts)")}
        assert len(db.execute("SELECT * FROM alert_refs").fetchall()) == 3
        db.execute("DROP TRIGGER cut_short")
    db.close()
    assert [a.summary() for a in _stored(data)] == before
    assert sorted(len(tail) for tail in _tails(data)) == [3, 22 % PART_REFS]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


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


def test_an_alert_written_whole_over_a_stored_one_moves_its_filtered_columns(
    tmp_path: Path,
) -> None:
    # Written whole under a key a row still holds (a triaged alert withdrawn, then found again
    # about someone else): the columns filters and relinking read follow the body.
    engine = _engine(tmp_path)
    engine.process([_event(m) for m in range(3)])
    engine.close()
    (alert,) = _stored(tmp_path)
    again = msgspec.structs.replace(alert, user="zoe@contoso.com", source_ip="192.0.2.77")
    db = DetectDB(tmp_path / "detect.sqlite3")
    try:
        store = AlertStore(db)
        with db.transaction() as conn:
            store.save(conn, [again], 0.0)
        (by_user,) = store.find(AlertFilter(user="zoe@contoso.com", limit=10))
        (by_address,) = store.find(AlertFilter(source_ip="192.0.2.77", limit=10))
    finally:
        db.close()
    assert by_user.id == by_address.id == alert.id
    assert by_user.user == "zoe@contoso.com"
