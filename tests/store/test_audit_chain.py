"""The audit trail: append-only rows, a hash chain and a sealed head that ``verify`` checks.

Tampering is done as an attacker with the SQLite file would: drop the triggers, then edit,
delete, reorder or cut rows with plain SQL.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubsight.errors import StoreError
from hubsight.store.audit import GENESIS, AuditFilter, AuditLog, changes, scrubbed
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.vault import KEY_FILE

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """A clock that moves one minute per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        self.now += 60
        return self.now


def _trail(data_dir: Path, entries: int = 5) -> AuditLog:
    log = AuditLog(data_dir, clock=Clock())
    for n in range(entries):
        log.record(
            actor="alice" if n % 2 else "bob",
            action=("source.update", "sign-in", "export")[n % 3],
            via="session",
            address=f"198.51.100.{n}",
            target=f"obj{n}",
            details={"n": n},
        )
    return log


def _tamper(data_dir: Path, *statements: str | tuple[str, str]) -> None:
    """Run SQL on the trail as someone with the file would: triggers dropped first."""
    db = sqlite3.connect(data_dir / CATALOG_FILE, isolation_level=None)
    try:
        for name in ("log_no_update", "log_no_delete", "head_no_delete", "head_forward"):
            db.execute(f"DROP TRIGGER IF EXISTS audit_{name}")
        for statement in statements:
            sql, args = (
                (statement, ()) if isinstance(statement, str) else (statement[0], statement[1:])
            )
            db.execute(sql, args)
    finally:
        db.close()


def test_entries_are_chained_and_read_back_newest_first(data_dir: Path) -> None:
    log = _trail(data_dir)
    entries = log.entries()
    assert [e.seq for e in entries] == [5, 4, 3, 2, 1]
    first = entries[-1]
    assert first.prev_hash == GENESIS
    assert (first.actor, first.address, first.target) == ("bob", "198.51.100.0", "obj0")
    assert first.at == "2026-03-01T12:01:00.000000Z"
    for newer, older in itertools.pairwise(entries):
        assert newer.prev_hash == older.hash
    # The hash is SHA-256 over the previous hash and the canonical JSON of the entry.
    row = {k: v for k, v in first.as_dict().items() if k not in ("prev_hash", "hash")}
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert first.hash == hashlib.sha256(f"{GENESIS}\n{text}".encode()).hexdigest()
    assert log.verify().ok
    assert log.verify().count == 5
    assert log.verify().began == first.at


def test_filters_by_actor_action_family_time_and_pages(data_dir: Path) -> None:
    log = _trail(data_dir, entries=7)
    assert [e.seq for e in log.entries(AuditFilter(actor="alice"))] == [6, 4, 2]
    assert [e.seq for e in log.entries(AuditFilter(action="source"))] == [7, 4, 1]
    assert [e.seq for e in log.entries(AuditFilter(action="source.update"))] == [7, 4, 1]
    # A family is a whole word before the dot: "sour" is no family.
    assert log.entries(AuditFilter(action="sour")) == []
    start = datetime.fromtimestamp(T0, UTC)
    # Entry n is at minute n: since is inclusive, until exclusive.
    window = AuditFilter(since=start + timedelta(minutes=3), until=start + timedelta(minutes=5))
    assert [e.seq for e in log.entries(window)] == [4, 3]
    assert [e.seq for e in log.entries(AuditFilter(limit=3))] == [7, 6, 5]
    assert [e.seq for e in log.entries(AuditFilter(limit=3, before=5))] == [4, 3, 2]


def test_the_table_refuses_update_and_delete(data_dir: Path) -> None:
    _trail(data_dir, entries=2)
    db = sqlite3.connect(data_dir / CATALOG_FILE, isolation_level=None)
    try:
        for statement in (
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 2",
            "DELETE FROM audit_head",
            "UPDATE audit_head SET count = 1",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
        assert db.execute("SELECT count(*), max(actor) FROM audit_log").fetchone() == (2, "bob")
    finally:
        db.close()


def test_verify_names_an_edited_entry(data_dir: Path) -> None:
    log = _trail(data_dir)
    _tamper(data_dir, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    found = log.verify()
    assert not found.ok
    assert found.problems == ["entry 3: its content does not match its hash (edited)"]


def test_verify_sees_an_edit_whose_hash_was_recomputed_at_the_next_entry(data_dir: Path) -> None:
    log = _trail(data_dir)
    third = log.entries(AuditFilter(before=4, limit=1))[0]
    row = {k: v for k, v in third.as_dict().items() if k not in ("prev_hash", "hash")}
    row["actor"] = "mallory"
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    forged = hashlib.sha256(f"{third.prev_hash}\n{text}".encode()).hexdigest()
    _tamper(data_dir, ("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 3", forged))
    assert [p.split(":")[0] for p in log.verify().problems] == ["entry 4"]


def test_verify_names_an_entry_deleted_in_the_middle(data_dir: Path) -> None:
    log = _trail(data_dir)
    _tamper(data_dir, "DELETE FROM audit_log WHERE seq = 2")
    problems = log.verify().problems
    assert problems[0] == "entry 3: entries 2..2 are missing (deleted)"
    assert problems[1].startswith("entry 3: its previous hash does not match")
    assert len(problems) == 2


def test_verify_sees_entries_moved_into_each_others_place(data_dir: Path) -> None:
    log = _trail(data_dir)
    _tamper(
        data_dir,
        "UPDATE audit_log SET seq = -2 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = -2",
    )
    problems = log.verify().problems
    assert {p.split(":")[0] for p in problems} == {"entry 2", "entry 3", "entry 4"}


def test_verify_sees_entries_cut_from_the_end(data_dir: Path) -> None:
    log = _trail(data_dir)
    _tamper(data_dir, "DELETE FROM audit_log WHERE seq >= 4")
    found = log.verify()
    assert found.count == 3
    assert found.problems == [
        "the head records 5 entries but the trail ends at 3: entries 4..5 were cut from the end"
    ]


def test_a_head_rewritten_without_the_key_is_seen(data_dir: Path) -> None:
    log = _trail(data_dir)
    last_kept = log.entries(AuditFilter(before=4, limit=1))[0].hash
    _tamper(
        data_dir,
        "DELETE FROM audit_log WHERE seq >= 4",
        ("UPDATE audit_head SET count = 3, hash = ?", last_kept),
    )
    assert log.verify().problems == [
        "the head's seal does not match: it was rewritten, or the secret key changed"
    ]


def test_a_removed_head_is_named(data_dir: Path) -> None:
    log = _trail(data_dir, entries=2)
    _tamper(data_dir, "DELETE FROM audit_head")
    assert log.verify().problems[0].startswith("the head record is missing")
    with pytest.raises(StoreError, match="head does not match its entries"):
        log.record(actor="x", action="sign-in", via="session")


def test_an_entry_appended_by_hand_is_seen(data_dir: Path) -> None:
    log = _trail(data_dir, entries=2)
    last = log.entries(AuditFilter(limit=1))[0]
    _tamper(
        data_dir,
        (
            "INSERT INTO audit_log SELECT seq + 1, at, actor, via, address, action, target, "
            "outcome, details, ?, hash FROM audit_log WHERE seq = 2",
            last.hash,
        ),
    )
    problems = log.verify().problems
    assert problems[0] == "entry 3: its content does not match its hash (edited)"
    assert problems[1].startswith("the last entry (3) is not the one the head records (2)")


def test_a_clean_trail_verifies_and_an_empty_one_too(data_dir: Path, tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "empty").verify().ok
    assert AuditLog(tmp_path / "empty").verify().count == 0
    log = _trail(data_dir, entries=3)
    # Another process (the CLI) appending to the same file continues the same chain.
    AuditLog(data_dir).record(actor="cli:root", action="source.delete", via="cli")
    assert log.verify().ok
    assert log.verify().count == 4


def test_appends_from_several_processes_at_once_make_one_chain(data_dir: Path) -> None:
    AuditLog(data_dir)

    def append(worker: int) -> None:
        # Each its own AuditLog, as the CLI and `hubsight run` are.
        log = AuditLog(data_dir)
        for n in range(15):
            log.record(actor=f"w{worker}", action="sign-in", via="session", details={"n": n})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(append, range(4)))
    found = AuditLog(data_dir).verify()
    assert (found.ok, found.count) == (True, 60)


def test_an_append_after_cutting_fails_loudly(data_dir: Path) -> None:
    log = _trail(data_dir, entries=3)
    # The head still says 3: the next append's seq is taken by a row added by hand.
    _tamper(
        data_dir,
        "INSERT INTO audit_log SELECT 4, at, actor, via, address, action, target, outcome, "
        "details, prev_hash, hash FROM audit_log WHERE seq = 3",
    )
    with pytest.raises(StoreError, match="head does not match its entries"):
        log.record(actor="x", action="sign-in", via="session")


def test_another_secret_key_breaks_the_seal(data_dir: Path) -> None:
    _trail(data_dir, entries=2)
    (data_dir / KEY_FILE).unlink()
    assert AuditLog(data_dir).verify().problems == [
        "the head's seal does not match: it was rewritten, or the secret key changed"
    ]


def test_secret_looking_keys_never_keep_their_values(data_dir: Path) -> None:
    plant = "planted-Password-9f8e7d6c"
    details = {
        "changes": {"profile.password": [None, plant], "topics": [["a"], ["b"]]},
        "connection_string": plant,
        "nested": [{"auth_header": plant, "url": plant, "token": plant}],
        "shown": {"password": "(set)", "url": "not set"},
    }
    assert plant not in json.dumps(scrubbed(details))
    assert scrubbed(details)["changes"]["topics"] == [["a"], ["b"]]
    assert scrubbed(details)["shown"] == {"password": "(set)", "url": "not set"}
    log = AuditLog(data_dir)
    log.record(actor="a", action="source.update", via="token", details=details)
    for path in data_dir.iterdir():
        assert plant.encode() not in path.read_bytes(), path.name


def test_changes_name_nested_fields_by_dotted_path() -> None:
    before = {"name": "s", "profile": {"bootstrap": "a:1", "tls": False}, "topics": ["t"]}
    after = {"name": "s", "profile": {"bootstrap": "b:1", "tls": False}, "enabled": True}
    assert changes(before, after) == {
        "enabled": [None, True],
        "profile.bootstrap": ["a:1", "b:1"],
        "topics": [["t"], None],
    }
    assert changes({}, {"p": {"x": 1}}) == {"p.x": [None, 1]}
    assert changes({"p": {}}, {"p": {}}) == {}
    assert changes(before, before) == {}
