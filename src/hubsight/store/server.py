"""The event store on a ClickHouse server or cluster, through clickhouse-connect (HTTP).

The same SQL as the embedded store: the same migrations, reads with ``{name:Type}`` parameters
bound by the server, rows decoded from the same JSONCompact answer. What differs:

- a batch carries an ``insert_deduplication_token`` derived from its events' positions, so a
  retried INSERT (a timeout after the server stored it) is not stored twice;
- with ``?cluster=NAME`` every table is a ``Replicated*MergeTree`` on each shard (``<t>_local``)
  behind a ``Distributed`` table of the plain name, sharded by log name, and every DDL runs
  ``ON CLUSTER`` (``cluster_ddl``); inserts wait for the shards (``insert_distributed_sync``).

URL: ``clickhouse://USER@HOST:8123/DATABASE?cluster=NAME&secure=true``; the password comes from
``HUBSIGHT_STORE_PASSWORD`` (one in the URL works too, but shows in ``ps``). Errors name the
host, never the password.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from hubsight.errors import ConfigError, StoreError
from hubsight.parsing.event import Event
from hubsight.store.base import Offsets
from hubsight.store.schema import (
    EVENTS_TABLE,
    check_not_newer,
    missing_column_ddl,
    pending_migrations,
)
from hubsight.store.sql import READ_SETTINGS, STORED_OFFSETS, decode_rows

PASSWORD_ENV = "HUBSIGHT_STORE_PASSWORD"  # noqa: S105 - the variable's name, not a password
_encoder = msgspec.json.Encoder()
_INSERT_SETTINGS = {
    "date_time_input_format": "best_effort",
    "input_format_json_read_objects_as_strings": 1,
}
# Single servers deduplicate retried inserts of the last 1,000 batches by their token.
_SINGLE_SERVER = [
    f"ALTER TABLE {EVENTS_TABLE} MODIFY SETTING non_replicated_deduplication_window = 1000"
]


class SqlClient(Protocol):
    """The part of clickhouse-connect's client this store uses (tests run it on chdb)."""

    def command(self, cmd: str, *, parameters: Any = None, settings: Any = None) -> Any:
        """Run a statement."""
        ...

    def raw_query(
        self, query: str, *, parameters: Any = None, settings: Any = None, fmt: str | None = None
    ) -> bytes:
        """Run a query; its answer in ``fmt``."""
        ...

    def raw_insert(
        self,
        table: str,
        *,
        insert_block: bytes | None = None,
        settings: Any = None,
        fmt: str | None = None,
    ) -> Any:
        """Insert a block in ``fmt``."""
        ...

    def close(self) -> None:
        """Close connections."""
        ...


class ServerStore:
    """Events on a ClickHouse server, or a cluster with ``cluster``."""

    def __init__(self, client: SqlClient, *, where: str, cluster: str | None = None) -> None:
        self._client = client
        self._where = where
        self._cluster = cluster
        try:
            self._migrate()
        except BaseException:
            # A store that cannot be used (a newer schema, a failed migration) lets go of the
            # engine: chdb holds one data directory per process until its sessions close.
            self.close()
            raise

    def _command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
        except Exception as exc:
            raise StoreError(
                f"the ClickHouse server at {self._where} refused a statement: {_first_line(exc)}"
            ) from exc

    def _ddl(self, statement: str) -> None:
        for sql in cluster_ddl(statement, self._cluster) if self._cluster else [statement]:
            self._command(sql)

    def _migrate(self) -> None:
        self._ddl(
            "CREATE TABLE IF NOT EXISTS hubsight_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        applied = {r["version"] for r in self.select("SELECT version FROM hubsight_migrations")}
        check_not_newer(applied, self._where)
        for version, name, statements in pending_migrations(applied):
            if version > 1 and statements:
                # A later migration may name columns added to Event since the table was made.
                self._add_missing_columns()
            extra = _SINGLE_SERVER if version == 1 and not self._cluster else []
            for statement in [*statements, *extra]:
                self._ddl(statement)
            self.execute(
                "INSERT INTO hubsight_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                {"v": version, "n": name},
            )
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        existing = {
            r["name"]
            for r in self.select(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String}",
                {"t": EVENTS_TABLE},
            )
        }
        for statement in missing_column_ddl(existing):
            self._ddl(statement)

    def write(self, events: Sequence[Event]) -> None:
        """Insert ``events`` once: a retry of the same batch is deduplicated by its token."""
        if not events:
            return
        settings = dict(_INSERT_SETTINGS, insert_deduplication_token=dedup_token(events))
        if self._cluster:
            settings["insert_distributed_sync"] = 1
        try:
            self._client.raw_insert(
                EVENTS_TABLE, insert_block=_encoder.encode(events), settings=settings,
                fmt="JSONEachRow",
            )  # fmt: skip
        except Exception as exc:
            raise StoreError(
                f"writing {len(events)} events to {self._where} failed: {_first_line(exc)}",
                hint="nothing is committed: the batch is written again once the server answers",
            ) from exc

    def stored_offsets(self, log_name: str) -> Offsets:
        """The highest stored offset per (topic, partition) of one log name."""
        rows = self.select(STORED_OFFSETS, {"log_name": log_name})
        return {(r["source_topic"], int(r["source_partition"])): int(r["offset"]) for r in rows}

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query; rows as dicts keyed by column name."""
        try:
            body = self._client.raw_query(
                sql, parameters=dict(params) if params else None, settings=READ_SETTINGS,
                fmt="JSONCompact",
            )  # fmt: skip
        except Exception as exc:
            raise StoreError(f"event store query failed: {_first_line(exc)}") from exc
        return decode_rows(body)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        self._command(sql, params)

    def check_backup(self) -> None:
        """Refused: a server's data is backed up on the server."""
        raise StoreError(
            f"hubsight backup copies an embedded store only; {self._where} is a ClickHouse server",
            hint="back it up with the server's own BACKUP ... TO Disk/S3 (see docs/scale-out.md)",
        )

    def backup(self, target: Path) -> None:
        """Not here: see ``check_backup``."""
        self.check_backup()

    def memory(self) -> None:
        """None: the engine runs on the server (its memory is in the server's own metrics)."""
        return None

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def dedup_token(events: Sequence[Event]) -> str:
    """The same for the same batch re-sent (its records' positions), else different."""
    digest = hashlib.sha256()
    for e in events:
        position = f"{e.log_name}\x00{e.source_topic}\x00{e.source_partition}\x00"
        digest.update(f"{position}{e.source_offset}\x00{e.record_index}\n".encode())
    return digest.hexdigest()


_CREATE = re.compile(
    r"^\s*CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)\s*ENGINE = (\w+)(\(.*?\))?\s(.*)$", re.S
)
_ALTER = re.compile(r"^\s*ALTER TABLE (\w+) (.*)$", re.S)


def cluster_ddl(statement: str, cluster: str) -> list[str]:
    """A single-server statement as run on a cluster: each table replicated on every shard
    (``<t>_local``) behind a ``Distributed`` table of its name; ALTERs ``ON CLUSTER``."""
    on = f"ON CLUSTER {_identifier(cluster)}"
    created = _CREATE.match(statement)
    if created:
        table, body, engine, args, rest = created.groups()
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'"
        arguments = f"{path}, {args[1:-1]}" if args else path
        # A log name's events stay on one shard, in the order they were stored.
        shard_by = "cityHash64(log_name)" if table == EVENTS_TABLE else "rand()"
        return [
            f"CREATE TABLE IF NOT EXISTS {table}_local {on} ({body}) "
            f"ENGINE = Replicated{engine}({arguments}) {rest.strip()}",
            f"CREATE TABLE IF NOT EXISTS {table} {on} AS {table}_local ENGINE = Distributed("
            f"{_identifier(cluster)}, currentDatabase(), {table}_local, {shard_by})",
        ]
    altered = _ALTER.match(statement)
    if altered:
        table, action = altered.groups()
        local = f"ALTER TABLE {table}_local {on} {action}"
        # The Distributed table mirrors the columns; indexes, settings and TTLs are the shards'.
        return [local, f"ALTER TABLE {table} {on} {action}"] if "ADD COLUMN" in action else [local]
    raise StoreError(f"no cluster form of the statement {statement[:60]!r}")


def open_server(url: str, data_dir: Path) -> ServerStore:
    """Connect to the server ``url`` names (``clickhouse://`` or ``clickhouses://``)."""
    import clickhouse_connect

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"cluster", "secure"}
    if not parts.hostname or unknown:
        raise ConfigError(
            "the store URL is not clickhouse://USER@HOST:PORT/DATABASE?cluster=NAME"
            + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""),
            hint="e.g. clickhouse://hubsight@ch1.contoso.com:8443/hubsight?secure=true",
        )
    secure = parts.scheme == "clickhouses" or query.get("secure", "").lower() in ("1", "true")
    where = f"{parts.hostname}:{parts.port or (8443 if secure else 8123)}"
    try:
        client = clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=os.environ.get(PASSWORD_ENV) or unquote(parts.password or ""),
            database=parts.path.strip("/") or "default",
            secure=secure,
        )
    except Exception as exc:
        raise StoreError(
            f"cannot reach the ClickHouse server at {where}: {_first_line(exc)}",
            hint=f"check the host, port and user, and {PASSWORD_ENV}",
        ) from exc
    return ServerStore(client, where=where, cluster=query.get("cluster"))


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{name!r} is not a cluster name", hint="letters, digits and _ only")
    return name


def _first_line(exc: BaseException) -> str:
    """Why ``exc`` happened, in a few words: the system's reason for a connection that failed
    (under clickhouse-connect's and urllib3's wrappers), else the first line of its text."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
