"""The ClickHouse server backend, its statements run on a real ClickHouse engine (chdb).

No ClickHouse server can run here, so ``ChdbClient`` plays clickhouse-connect's client: it hands
every statement the backend sends, with its parameters and settings, to chdb. What that cannot
show (HTTP, a real cluster's Keeper and shards) is listed in the README.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from chdb import session as chdb_session

from hubsight import backup
from hubsight.errors import ConfigError, StoreError
from hubsight.parsing.event import Event, LogSet
from hubsight.query.search import SearchRequest, search
from hubsight.store import retention
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.schema import MIGRATIONS, missing_column_ddl
from hubsight.store.server import ServerStore, cluster_ddl, dedup_token

from tests.support import index_counted_batches


class ChdbClient:
    """clickhouse-connect's client calls, run by chdb; every statement is kept."""

    def __init__(self, path: Path) -> None:
        self.session = chdb_session.Session(str(path))
        self.statements: list[str] = []
        self.closed = False

    def _run(self, sql: str, parameters: Any, settings: Any, fmt: str = "CSV") -> bytes:
        self.statements.append(sql)
        for name, value in (settings or {}).items():
            self.session.query(f"SET {name} = {_literal(value)}")
        try:
            result = self.session.query(sql, fmt, params=parameters)
        finally:
            for name in settings or {}:
                self.session.query(f"SET {name} = DEFAULT")
        return bytes(result.bytes()) if result is not None else b""

    def command(self, cmd: str, *, parameters: Any = None, settings: Any = None) -> Any:
        return self._run(cmd, parameters, settings)

    def raw_query(
        self, query: str, *, parameters: Any = None, settings: Any = None, fmt: str | None = None
    ) -> bytes:
        return self._run(query, parameters, settings, fmt or "JSONCompact")

    def raw_insert(
        self,
        table: str,
        *,
        insert_block: bytes | None = None,
        settings: Any = None,
        fmt: str | None = None,
    ) -> Any:
        sql = f"INSERT INTO {table} FORMAT {fmt}\n{(insert_block or b'').decode()}"
        return self._run(sql, None, settings)

    def close(self) -> None:
        self.closed = True


def _literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "\\'") + "'"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[ChdbClient]:
    opened = ChdbClient(tmp_path / "server")
    yield opened
    opened.session.close()


def _batch(offsets: range, log_set: LogSet = LogSet.INGRESS_AUTHENTICATION) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(
            timestamp=now - timedelta(minutes=n),
            log_set=log_set,
            log_name="azure-prod",
            raw=msgspec.Raw(json.dumps({"n": n}).encode()),
            source_topic="insights-operational-logs",
            source_partition=0,
            source_offset=n,
            record_index=0,
        )
        for n in offsets
    ]


def test_a_single_server_runs_the_embedded_stores_sql(client: ChdbClient) -> None:
    store = ServerStore(client, where="ch1:8123")
    versions = [r["version"] for r in store.select("SELECT version FROM hubsight_migrations")]
    assert sorted(versions) == [v for v, _, _ in MIGRATIONS]
    assert missing_column_ddl({r["name"] for r in store.select(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events'"
    )}) == []  # fmt: skip
    store.write(_batch(range(0, 5)))
    assert store.stored_offsets("azure-prod") == {("insights-operational-logs", 0): 4}
    answer = search(store, SearchRequest(query="groupby(log_set)", last="1d")).to_json()
    assert answer["rows"] == [["Ingress Authentication", 5]]
    assert retention.apply(store, retention.default_policy()) is True
    assert retention.apply(store, retention.default_policy()) is False
    # Reopening finds everything migrated: no DDL runs again.
    before = len(client.statements)
    ServerStore(client, where="ch1:8123")
    assert not any(
        s.startswith(("CREATE TABLE events", "ALTER")) for s in client.statements[before:]
    )


def test_a_count_over_a_time_range_counts_each_event_once(client: ChdbClient) -> None:
    store = ServerStore(client, where="ch1:8123")
    for batch in index_counted_batches(datetime(2026, 12, 1, tzinfo=UTC)):
        store.write(batch)
    request = SearchRequest(query="calculate(count)", start="2026-11-01", end="2026-12-04")
    assert search(store, request).to_json()["rows"] == [[11_999]]


def test_a_retried_batch_is_stored_once_and_a_new_one_is_stored(client: ChdbClient) -> None:
    store = ServerStore(client, where="ch1:8123")
    first = _batch(range(0, 3))
    store.write(first)
    store.write(_batch(range(0, 3)))  # the same positions sent again after a timeout
    store.write(_batch(range(3, 6)))
    (row,) = store.select("SELECT count() AS n, uniqExact(source_offset) AS offsets FROM events")
    assert row == {"n": 6, "offsets": 6}
    assert dedup_token(first) == dedup_token(_batch(range(0, 3)))
    assert dedup_token(first) != dedup_token(_batch(range(0, 4)))
    assert dedup_token(first) != dedup_token(_batch(range(0, 3), LogSet.UNPARSED_DATA)[:2])


def test_backup_of_a_server_is_refused_before_it_reads_or_makes_anything(
    client: ChdbClient, tmp_path: Path
) -> None:
    store = ServerStore(client, where="ch1:8123")
    store.write(_batch(range(3)))
    sent = len(client.statements)
    target = tmp_path / "copy" / "nested"
    with pytest.raises(StoreError, match="embedded store only; ch1:8123 is a ClickHouse server"):
        backup.create(tmp_path / "data", store, target)
    # It counted the events on the server and made the directory before refusing.
    assert client.statements[sent:] == []
    assert not (tmp_path / "copy").exists()


def test_a_store_of_a_newer_release_is_refused(client: ChdbClient) -> None:
    ServerStore(client, where="ch1:8123").execute(
        "INSERT INTO hubsight_migrations (version, name) VALUES (999, 'future')"
    )
    with pytest.raises(StoreError) as caught:
        ServerStore(client, where="ch1:8123")
    assert "the event store in ch1:8123 has schema version 999" in caught.value.message
    assert client.closed


def test_every_cluster_statement_is_on_cluster_and_parses(client: ChdbClient) -> None:
    statements = [s for _, _, group in MIGRATIONS for s in group] + [
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS `x` String",
        f"ALTER TABLE events MODIFY TTL {retention.ttl_expression(retention.default_policy())}",
    ]
    clustered = [c for s in statements for c in cluster_ddl(s, "prod")]
    assert all(" ON CLUSTER prod " in c for c in clustered)
    create_local, create_events = cluster_ddl(MIGRATIONS[0][2][0], "prod")
    assert create_local.startswith("CREATE TABLE IF NOT EXISTS events_local ON CLUSTER prod (")
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local', "
        "'{replica}') "
    ) in create_local
    assert "ORDER BY (log_set, log_name, timestamp)" in create_local
    assert create_events == (
        "CREATE TABLE IF NOT EXISTS events ON CLUSTER prod AS events_local ENGINE = "
        "Distributed(prod, currentDatabase(), events_local, cityHash64(log_name))"
    )
    saved = [c for c in clustered if "saved_queries_local" in c and "CREATE" in c]
    assert "ENGINE = ReplicatedReplacingMergeTree(" in saved[0]
    assert "'{replica}', version)" in saved[0]
    # A column reaches both tables; an index or a TTL only the shards' tables.
    assert cluster_ddl("ALTER TABLE events ADD COLUMN IF NOT EXISTS `x` String", "prod") == [
        "ALTER TABLE events_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS `x` String",
        "ALTER TABLE events ON CLUSTER prod ADD COLUMN IF NOT EXISTS `x` String",
    ]
    # chdb has no Keeper or cluster to run them on, but its parser takes every one.
    for statement in clustered:
        client.command(f"EXPLAIN AST {statement}")
    with pytest.raises(ConfigError):
        cluster_ddl(MIGRATIONS[0][2][0], "prod; DROP TABLE events")


def test_store_urls_are_checked_and_errors_keep_the_password_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in ("clickhouse:///hubsight", "clickhouse://h:8123/db?shards=2"):
        with pytest.raises(ConfigError) as caught:
            open_store(StoreSettings(data_dir=tmp_path, url=url))
        assert "clickhouse://USER@HOST:PORT/DATABASE" in caught.value.message
    monkeypatch.setenv("HUBSIGHT_STORE", "clickhouse://hubsight:s3cret-pw@127.0.0.1:1/hubsight")
    settings = StoreSettings.resolve(tmp_path)
    assert "s3cret" not in repr(settings)
    with pytest.raises(StoreError) as unreachable:
        open_store(settings)
    assert "cannot reach the ClickHouse server at 127.0.0.1:1" in unreachable.value.message
    assert "s3cret" not in unreachable.value.message + unreachable.value.hint
    assert StoreSettings.resolve(tmp_path, "clickhouse://other:8123").url == (
        "clickhouse://other:8123"
    )
