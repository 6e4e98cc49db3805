"""The detection database: ``<data_dir>/detect.sqlite3`` holds state, alerts and settings.

One SQLite file in WAL mode, so the API can read alerts while the engine writes. The engine
commits its state and the alerts a batch produced in one transaction: after a crash either both
are there or neither is, and replaying the batch yields the same result (see ``engine``).

``synchronous=NORMAL`` with WAL does not sync the log on every commit, which keeps commits
cheap: a commit survives the process crashing (the log is in the operating system's cache); only
a power cut or an OS crash can undo the last commits (never corrupt the file).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec

from hubsight.errors import StoreError
from hubsight.store.sqlite import schema_version, sqlite_error

DB_NAME = "detect.sqlite3"
# Raised when a release changes the tables in a way an older one cannot read. 3: an alert's
# evidence moved from its body into ``alert_refs`` (2 had it in ``alert_evidence``, whole).
# 4: notifications due wait in ``outbox``, which an older release would never send. 5: the end
# of an alert's evidence is in its row (``tail``), the rest in ``alert_refs``.
SCHEMA_VERSION = 5
# An alert's evidence is stored in parts of whole multiples of this many refs, the rest in its
# row's tail (see ``alerts``).
PART_REFS = 8
# The write-ahead log is copied into the database every this many pages (4 KB): about every
# 16 MB of changes; and cut back to WAL_LIMIT_BYTES after each copy.
CHECKPOINT_PAGES = 4000
WAL_LIMIT_BYTES = 16 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Window entries, one row per rule and batch that added any (a map: window key -> its new
-- entries; see ``state``), so a batch writes a row or two instead of hundreds. A row goes once
-- its newest entry is older than the rule's cut; the index takes each batch's row at its right
-- edge.
CREATE TABLE IF NOT EXISTS window_batches (
    rule_id TEXT NOT NULL, newest REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS window_batches_newest ON window_batches (newest);
CREATE TABLE IF NOT EXISTS baselines (subject TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, dedup_key TEXT UNIQUE NOT NULL, rule_id TEXT NOT NULL,
    severity TEXT NOT NULL, notable INTEGER NOT NULL, user TEXT, source_ip TEXT,
    first_event_time REAL NOT NULL, last_event_time REAL NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', disposition TEXT, assignee TEXT, body BLOB NOT NULL,
    tail BLOB);
CREATE INDEX IF NOT EXISTS alerts_user ON alerts (user, last_event_time);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (last_event_time);
-- Closed alerts by when they last changed, for case retention (``expiry``) to walk without
-- reading their rows (so ``status`` too); partial, so that the engine's updates of open alerts
-- (nearly all it writes) leave it alone.
DROP INDEX IF EXISTS alerts_closed;
CREATE INDEX IF NOT EXISTS alerts_closed_at ON alerts (updated_at, id, status)
    WHERE status = 'closed';
-- An alert's evidence, apart from its body, in parts (JSON lists of event references) that
-- read in ``start`` order, then the alert's ``tail``, make the list: a batch appends a part
-- when the tail fills, or writes the list again from 0 (see ``alerts``). The parts go with
-- their alert.
CREATE TABLE IF NOT EXISTS alert_refs (
    alert_id TEXT NOT NULL, start INTEGER NOT NULL, refs BLOB NOT NULL,
    PRIMARY KEY (alert_id, start)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS alert_refs_gone AFTER DELETE ON alerts
    BEGIN DELETE FROM alert_refs WHERE alert_id = old.id; END;
CREATE TABLE IF NOT EXISTS alert_history (
    alert_id TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history (alert_id, at);
-- Investigations group alerts about the same user, address or resource (see ``grouping``);
-- an alert is in at most one. Subjects index what each investigation concerns.
CREATE TABLE IF NOT EXISTS investigations (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open',
    disposition TEXT, assignee TEXT, priority TEXT NOT NULL,
    first_event_time REAL NOT NULL, last_event_time REAL NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS investigations_time ON investigations (last_event_time);
DROP INDEX IF EXISTS investigations_closed;
CREATE INDEX IF NOT EXISTS investigations_closed_at ON investigations (updated_at, id, status)
    WHERE status = 'closed';
CREATE TABLE IF NOT EXISTS investigation_alerts (
    alert_id TEXT PRIMARY KEY, investigation_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS investigation_alerts_of ON investigation_alerts (investigation_id);
CREATE TABLE IF NOT EXISTS investigation_subjects (
    subject TEXT NOT NULL, investigation_id TEXT NOT NULL,
    PRIMARY KEY (subject, investigation_id));
CREATE TABLE IF NOT EXISTS investigation_history (
    investigation_id TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS investigation_history_of ON investigation_history (investigation_id, at);
-- The alerts that closing an investigation closed, with their triage before (``closed_as``:
-- the disposition it gave them), so that reopening it gives them back (see ``investigations``).
CREATE TABLE IF NOT EXISTS investigation_closed_alerts (
    investigation_id TEXT NOT NULL, alert_id TEXT NOT NULL, status TEXT NOT NULL,
    disposition TEXT, closed_as TEXT, PRIMARY KEY (investigation_id, alert_id)) WITHOUT ROWID;
-- Case retention deletes an alert's rows wherever they are (``expiry``).
CREATE INDEX IF NOT EXISTS investigation_closed_alerts_alert
    ON investigation_closed_alerts (alert_id);
CREATE TABLE IF NOT EXISTS rule_settings (
    rule_id TEXT PRIMARY KEY, enabled INTEGER, thresholds TEXT NOT NULL DEFAULT '{}',
    exceptions TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS dead_letters (
    at REAL NOT NULL, channel TEXT NOT NULL, alert_id TEXT NOT NULL, payload TEXT NOT NULL,
    error TEXT NOT NULL);
-- Which channel received which alert, so a withdrawn alert is followed up where it went (see
-- ``notify``); an alert's rows go once its follow-ups are sent.
CREATE TABLE IF NOT EXISTS notified (
    alert_id TEXT NOT NULL, channel TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (alert_id, channel));
-- Notifications due and not yet sent (see ``outbox``): queued in the transaction that saves
-- their alerts, each row removed in the one that records its delivery or dead letter.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, channel TEXT NOT NULL,
    withdrawn TEXT, body BLOB NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id);
CREATE TABLE IF NOT EXISTS sources (
    log_name TEXT NOT NULL, category TEXT NOT NULL, last_received REAL NOT NULL,
    PRIMARY KEY (log_name, category));
-- How far detection has read each source partition of the event store: the last event it
-- processed there (received time in ms, offset, record index), saved with that batch's alerts
-- and windows, so that after a crash or a failure it reads on from there (see ``catchup``).
CREATE TABLE IF NOT EXISTS positions (
    log_name TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    received_ms INTEGER NOT NULL, offset INTEGER NOT NULL, record_index INTEGER NOT NULL,
    PRIMARY KEY (log_name, topic, partition)) WITHOUT ROWID;
"""


def parted(count: int) -> int:
    """How many of an alert's ``count`` refs are stored in parts (the others in its tail)."""
    return count - count % PART_REFS


_refs = msgspec.json.Decoder(list[Any]).decode


class DetectDB:
    """A thread-safe handle on the detection database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # Window entries are inserted and pruned at random keys on every batch: a 64 MB page
            # cache keeps that from reading the same pages over and over; checkpoints every
            # 16 MB write each page changed meanwhile once (at 500 events/s, every few minutes).
            self._conn.execute("PRAGMA cache_size=-65536")
            self._conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES:d}")
            # A checkpoint leaves the log file as large as it grew (SQLite writes it over from
            # the start); this cuts it back after each one, so the file stays near the size
            # between two checkpoints instead of keeping its largest size (a long read or a
            # large batch) for good.
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES:d}")
            found = schema_version(self._conn, path, SCHEMA_VERSION)
            self._conn.executescript(_SCHEMA)
            if found < SCHEMA_VERSION:
                self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the detection database {path}: {exc}",
                hint=sqlite_error(path, exc).hint,
            ) from exc
        self._lock = threading.RLock()

    def _migrate(self) -> None:
        """Lay out what an older schema stored as this one does, and only then mark the file
        as of this schema, in the same transaction: a file of this schema is opened without
        looking for old layouts (which read every alert's row, so the more alerts the longer
        each start took), and a move cut short is undone whole and made again."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process (the CLI beside ``hubsight run``) may have moved it meanwhile.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
                _move_evidence(conn)
                _move_window_entries(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @classmethod
    def in_dir(cls, data_dir: Path) -> DetectDB:
        """The database of a data directory."""
        return cls(data_dir / DB_NAME)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                # No transaction began (another process holds the write lock past SQLite's
                # 5 s wait, say): there is nothing to roll back, and a ROLLBACK would fail in
                # turn with an untranslated "no transaction is active".
                raise StoreError(
                    f"detection database write failed: {exc}",
                    hint=f"another process may hold {self.path.name}'s write lock; hubsight "
                    "tries again with the next batch",
                ) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise StoreError(f"detection database write failed: {exc}") from exc
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read query; rows indexable by column name."""
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return list(cursor.fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"detection database read failed: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement in its own transaction; the number of rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one write statement for many rows in one transaction."""
        with self.transaction() as conn:
            conn.executemany(sql, rows)

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table."""
        found = self.rows("SELECT value FROM meta WHERE key = ?", (key,))
        return str(found[0]["value"]) if found else None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _move_evidence(conn: sqlite3.Connection) -> None:
    """Lay out the evidence of alerts stored before schema 5 as parts and a tail."""
    # Schema 2 kept each alert's evidence whole in ``alert_evidence``: one part each.
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alert_evidence'").fetchone():
        conn.execute(
            "INSERT OR IGNORE INTO alert_refs SELECT alert_id, 0, refs FROM alert_evidence"
        )
        conn.execute("DROP TABLE alert_evidence")
    if not any(column[1] == "tail" for column in conn.execute("PRAGMA table_info(alerts)")):
        conn.execute("ALTER TABLE alerts ADD COLUMN tail BLOB")
    # Alerts written before tails had their evidence in parts (schemas 2 and 3) or in their
    # body (1).
    old = conn.execute(
        "SELECT a.id, a.body, r.refs FROM alerts a LEFT JOIN alert_refs r "
        "ON r.alert_id = a.id WHERE a.tail IS NULL ORDER BY a.id, r.start"
    ).fetchall()
    for alert_id, rows in groupby(old, key=itemgetter(0)):
        got = list(rows)
        stored = [ref for row in got if row[2] is not None for ref in _refs(row[2])]
        body = got[0][1]
        if not stored:
            doc = msgspec.json.decode(body)
            stored = doc.get("evidence", [])
            doc["evidence"] = []
            body = msgspec.json.encode(doc)
        cut = parted(len(stored))
        conn.execute("DELETE FROM alert_refs WHERE alert_id = ?", (alert_id,))
        if cut:
            conn.execute(
                "INSERT INTO alert_refs VALUES (?, 0, ?)",
                (alert_id, msgspec.json.encode(stored[:cut])),
            )
        conn.execute(
            "UPDATE alerts SET body = ?, tail = ? WHERE id = ?",
            (body, msgspec.json.encode(stored[cut:]), alert_id),
        )


def _move_window_entries(conn: sqlite3.Connection) -> None:
    """Make each row of a database written before window batches (one per entry) a batch."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'window_entries'").fetchone():
        conn.execute(
            "INSERT INTO window_batches "
            "SELECT rule_id, ts, '{' || json_quote(key) || ':[' || body || ']}' "
            "FROM window_entries"
        )
        conn.execute("DROP TABLE window_entries")
