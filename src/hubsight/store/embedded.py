"""The event store on embedded ClickHouse (chdb), in one data directory.

ClickHouse lets one process hold a data directory at a time; ``hubsight run`` is that process
while it runs, and other commands reach the store through its local API.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from hubsight.errors import StoreError, StoreFullError
from hubsight.parsing.event import Event
from hubsight.store.base import Offsets
from hubsight.store.chdb_loader import chdb_session
from hubsight.store.engine_memory import EngineMemory, read_engine_memory
from hubsight.store.schema import (
    EVENTS_TABLE,
    check_not_newer,
    missing_column_ddl,
    pending_migrations,
    unpartition_ddl,
)
from hubsight.store.sql import READ_SETTINGS, STORED_OFFSETS, decode_rows

_encoder = msgspec.json.Encoder()

# A batch is written as one INSERT of one block into the table's one partition, which ClickHouse
# commits as one part: all of it or none. The limits keep every batch inside one block.
# Skip indexes (the full-text index on raw) are built by background merges, not on the insert
# path: building them inline cut the insert rate threefold. A part not merged yet is scanned,
# so results are the same, only slower, until the merge that follows within minutes.
INSERT_SETTINGS = (
    "SETTINGS date_time_input_format = 'best_effort', "
    "materialize_skip_indexes_on_insert = 0, "
    "input_format_json_read_objects_as_strings = 1, "
    "max_insert_block_size = 1048576, min_insert_block_size_rows = 0, "
    "min_insert_block_size_bytes = 0"
)
MAX_BATCH_EVENTS = 500_000
# Where BACKUP writes before the copy is moved to where it was asked for.
_BACKUPS = "backups"


class EmbeddedStore:
    """Events in embedded ClickHouse under ``<data_dir>/clickhouse``."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "clickhouse"
        self._path.mkdir(parents=True, exist_ok=True)
        self._closed = False
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # One connection per thread: a connection that streams an INSERT cannot run a query
        # meanwhile, and the collectors' writers and the API's readers work at the same time.
        # Threads come and go (the API's worker threads end after idling, a collector's writer
        # after each reconnect): the connection of a thread that ended is closed when the next
        # one opens, so they do not pile up for as long as the service runs.
        self._local = threading.local()
        self._sessions: dict[threading.Thread, Any] = {}
        try:
            self._migrate()
        except StoreError as exc:
            self.close()
            if exc.hint:
                raise
            # The engine's reason names a file of its own; what to do is the operator's question.
            raise StoreError(
                f"cannot open the event store in {self._path}: {exc.message}",
                hint="`hubsight doctor` checks the event store; if its files are damaged, "
                "restore a `hubsight backup` into a new --data-dir",
            ) from exc
        except BaseException:
            # A store that cannot be used (a newer schema, a failed migration) lets go of the
            # engine: chdb holds one data directory per process until its sessions close.
            self.close()
            raise

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        # A thread's session outlives close(): look at the flag first, as the lock below does.
        if session is not None and not self._closed:
            return session
        with self._lock:
            if self._closed:
                raise StoreError("the event store is closed")
            if not os.access(self._path, os.W_OK):
                # The engine writes its status file first, and says no more than "Read-only
                # file system" on its own stderr when it cannot: name it here instead.
                raise StoreError(
                    f"cannot open the event store in {self._path}: it is not writable",
                    hint="a read-only file system, or another user's directory: remount it "
                    "read-write, run as its owner, or pass a different --data-dir",
                )
            try:
                session = chdb_session.Session(_session_url(self._path))
                for name, value in READ_SETTINGS.items():
                    session.query(f"SET {name} = {value}")
            except Exception as exc:
                raise StoreError(
                    f"cannot open the event store in {self._path}: {_first_line(exc)}",
                    hint="another hubsight process may hold this data directory; "
                    "stop it or use its API, or pass a different --data-dir",
                ) from exc
            for thread in [t for t in self._sessions if not t.is_alive()]:
                self._sessions.pop(thread).close()
            # This thread's own, when a failed query spoiled it (_run): closed after the new
            # one opened, so the engine is never left without a session (it would shut down).
            spoiled = self._sessions.get(threading.current_thread())
            self._sessions[threading.current_thread()] = session
            if spoiled is not None:
                spoiled.close()
        self._local.session = session
        return session

    def _run(self, sql: str, params: Mapping[str, Any] | None = None, fmt: str = "CSV") -> bytes:
        # Outside the query's error handling: a store that cannot be opened says why, with its
        # own hint, rather than as a failed query.
        session = self._session()
        try:
            result = session.query(sql, fmt, params=dict(params) if params else None)
        except Exception as exc:
            # A query that failed while producing rows leaves them in its connection's buffer,
            # and chdb hands them out ahead of the next query's result (a search past the
            # memory cap, then "SELECT 1" answered with 2.7M rows): the next query opens a
            # connection of its own.
            self._local.session = None
            reason = _first_line(exc)
            hint = (
                f"the event store's memory cap ({MEMORY_CAP_BYTES // 1024**2:,} MB) was reached: "
                "narrow the search (a shorter time range, fewer log sets) or try again later"
                if "MEMORY_LIMIT_EXCEEDED" in reason
                else ""
            )
            raise StoreError(f"event store query failed: {reason}", hint=hint) from exc
        return bytes(result.bytes()) if result is not None else b""

    def _migrate(self) -> None:
        self._run(
            "CREATE TABLE IF NOT EXISTS hubsight_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        applied = {row["version"] for row in self.select("SELECT version FROM hubsight_migrations")}
        check_not_newer(applied, str(self._path))
        for version, name, statements in pending_migrations(applied):
            if version > 1 and statements:
                # A later migration may name columns added to Event since the table was made.
                self._add_missing_columns()
            for statement in statements:
                self._run(statement)
            self._run(
                "INSERT INTO hubsight_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                {"v": version, "n": name},
            )
        self._add_missing_columns()
        (table,) = self.select(
            "SELECT partition_key FROM system.tables WHERE database = currentDatabase() "
            "AND name = {t:String}",
            {"t": EVENTS_TABLE},
        )
        for statement in unpartition_ddl(table["partition_key"]):
            self._run(statement)

    def _add_missing_columns(self) -> None:
        existing = {
            row["name"]
            for row in self.select(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String}",
                {"t": EVENTS_TABLE},
            )
        }
        for statement in missing_column_ddl(existing):
            self._run(statement)

    def write(self, events: Sequence[Event]) -> None:
        """Insert ``events`` as one atomic, fsynced part; return only once all of them are in."""
        if not events:
            return
        if len(events) > MAX_BATCH_EVENTS:
            raise StoreError(f"a batch of {len(events)} events is over {MAX_BATCH_EVENTS}")
        body = _encoder.encode(events)
        # chdb's streaming insert reports success, and its rows as written, when the engine
        # failed to write the part (a full disk, a refused block). So, one write at a time, the
        # rows of the parts the insert made are counted (parts of level 0 numbered after the
        # last block before it: merges, which drop expired rows, cannot blur the count); when
        # they are missing, the same INSERT runs as a query, which raises the engine's error (or
        # stores them after all). Streaming is kept for the common case: the query costs about
        # twice the CPU.
        with self._write_lock:
            last_block = self._parts_figure("max(max_block_number)", "1")
            try:
                with self._session().send_insert(
                    f"INSERT INTO {EVENTS_TABLE} {INSERT_SETTINGS}", "JSONEachRow"
                ) as inserter:
                    inserter.append(body)
                    inserter.finish()
            except Exception as exc:
                raise self._write_error(len(events), _first_line(exc)) from exc
            added = self._parts_figure(
                "sum(rows)", f"level = 0 AND min_block_number > {last_block}"
            )
            if added == len(events):
                return
            if added:
                raise self._write_error(len(events), f"only {added} of them were stored")
            try:
                result = self._session().query(
                    f"INSERT INTO {EVENTS_TABLE} {INSERT_SETTINGS} FORMAT JSONEachRow\n".encode()
                    + body
                )
            except Exception as exc:
                raise self._write_error(len(events), _first_line(exc)) from exc
            if result.rows_written() != len(events):
                raise self._write_error(len(events), f"{result.rows_written()} were stored")

    def _parts_figure(self, figure: str, where: str) -> int:
        """One aggregate over the events table's parts, outdated ones included."""
        (row,) = self.select(
            # Both expressions are the caller's constants.
            f"SELECT {figure} AS n FROM system.parts WHERE database = currentDatabase() "  # noqa: S608
            f"AND table = {{t:String}} AND {where}",
            {"t": EVENTS_TABLE},
        )
        return int(row["n"])

    def _write_error(self, events: int, reason: str) -> StoreError:
        """The error of a failed write, saying where space is short when that is the cause."""
        if any(sign in reason for sign in _DISK_FULL):
            free = shutil.disk_usage(self._path).free
            return StoreFullError(
                f"writing {events} events failed: the disk of {self._path} is full "
                f"({_size(free)} free)",
                path=str(self._path),
                free_bytes=free,
                hint=f"free space on the disk of {self._path} or give it more",
            )
        return StoreError(
            f"writing {events} events failed: {reason}",
            hint="nothing of this batch was stored; it can be written again once the cause is gone",
        )

    def stored_offsets(self, log_name: str) -> Offsets:
        """The offset of the last stored message per (topic, partition) of one log name."""
        rows = self.select(STORED_OFFSETS, {"log_name": log_name})
        return {(r["source_topic"], int(r["source_partition"])): int(r["offset"]) for r in rows}

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query; rows as dicts keyed by column name."""
        return decode_rows(self._run(sql, params, "JSONCompact"))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (an INSERT of a few rows) with bound parameters."""
        self._run(sql, params)

    def check_backup(self) -> None:
        """Nothing to refuse: the embedded store copies itself."""

    def backup(self, target: Path) -> None:
        """A consistent copy of every table (ClickHouse ``BACKUP``) in ``target``, which must
        not exist; writes go on meanwhile."""
        staging = _staging(self._path)
        try:
            self._run(f"BACKUP DATABASE default TO File({_sql_string(str(staging))})")
            shutil.move(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def memory(self) -> EngineMemory:
        """The engine's memory: its allocator's, its tracked memory, its caches."""
        return read_engine_memory(self.select)

    @property
    def connections(self) -> int:
        """Connections open to the engine (one per thread that used the store and still runs)."""
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        """Release the engine so that another process may open the directory."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for session in self._sessions.values():
                    session.close()
                self._sessions.clear()


def restore_embedded(data_dir: Path, source: Path) -> None:
    """Bring a ``backup`` copy back into ``data_dir``, which must hold no event store yet."""
    path = data_dir / "clickhouse"
    path.mkdir(parents=True, exist_ok=True)
    staging = _staging(path)
    shutil.copytree(source, staging)
    session = chdb_session.Session(_session_url(path))
    try:
        session.query(f"RESTORE DATABASE default FROM File({_sql_string(str(staging))})")
    except Exception as exc:
        raise StoreError(
            f"restoring the event store from {source} failed: {_first_line(exc)}",
            hint="restore into an empty --data-dir from a directory `hubsight backup` wrote",
        ) from exc
    finally:
        session.close()
        shutil.rmtree(staging, ignore_errors=True)


MEMORY_CAP_BYTES = 4 * 1024**3

# The engine's server settings. ClickHouse sizes its caches for a server of its own (each up to
# half the machine's memory: 5 GB of marks, 5 GB of primary index, 4 GB of full-text index);
# inside hubsight's process that lets memory grow with every new part and every search. Bounded,
# a full cache drops its least used entries, which are read again from the part files (in the
# OS page cache) when needed: a search that touches more than the caches hold pays a re-read,
# nothing is lost. 10M stored events need a few MB of marks and primary index (one entry per
# 8,192 rows and column).
ENGINE_SETTINGS: Mapping[str, int] = {
    "mark_cache_size": 64 * 1024**2,
    "index_mark_cache_size": 32 * 1024**2,
    "primary_index_cache_size": 32 * 1024**2,
    "uncompressed_cache_size": 0,
    "index_uncompressed_cache_size": 0,
    # The full-text index on raw (searches for a word).
    "text_index_tokens_cache_size": 16 * 1024**2,
    "text_index_header_cache_size": 16 * 1024**2,
    "text_index_postings_cache_size": 32 * 1024**2,
    "query_condition_cache_size": 16 * 1024**2,
    "compiled_expression_cache_size": 16 * 1024**2,
    # All the engine's tracked memory at once (caches, inserts, merges, searches); by default,
    # and at most, 90% of the machine's. Past it a query fails with MEMORY_LIMIT_EXCEEDED (a
    # collector's write is retried, a search says to narrow itself) instead of the machine
    # swapping or killing hubsight. At rest the engine tracks ~20 MB; an INSERT ~26 KB per
    # event while it parses and sorts (a collector's largest batch, 16 MB of messages, ~150 MB;
    # 50,000 events 1.3 GB). 2 GB was too little: bench/soak.py's copy of 290,000 events
    # inside the engine, with merges running, went past it. Python's memory does not count.
    "max_server_memory_usage": MEMORY_CAP_BYTES,
    # Merges are not started while merges already hold this much (they wait, nothing fails).
    "merges_mutations_memory_usage_soft_limit": MEMORY_CAP_BYTES // 2,
}


def _session_url(path: Path) -> str:
    # BACKUP and RESTORE may only use File() under backups.allowed_path: a folder of the store.
    settings = "&".join(f"{name}={value}" for name, value in ENGINE_SETTINGS.items())
    return f"{path}?backups.allowed_path={path / _BACKUPS}&{settings}"


def _staging(path: Path) -> Path:
    (path / _BACKUPS).mkdir(exist_ok=True)
    return path / _BACKUPS / uuid.uuid4().hex


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# How ClickHouse words a full disk: it reserves space before writing a part, and a write that
# still meets a full disk fails with the system's ENOSPC text.
_DISK_FULL = ("NOT_ENOUGH_SPACE", "No space left on device")


def _size(free: int) -> str:
    if free < 1024 * 1024:
        return f"{free / 1024:.1f} KB"
    if free < 1024**3:
        return f"{free / 1024**2:.1f} MB"
    return f"{free / 1024**3:.1f} GB"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
