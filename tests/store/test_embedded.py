"""Writes to the embedded store are all or nothing, verified, and say why they failed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from chdb import session as chdb_session
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.errors import StoreError, StoreFullError
from hubsight.parsing.event import Event, LogSet
from hubsight.store.embedded import ENGINE_SETTINGS, EmbeddedStore
from hubsight.store.engine_memory import CACHES, jemalloc_figures
from hubsight.store.schema import MERGE_PARTS, _create_events

from tests.faults import SmallDisk
from tests.support import index_counted_batches


def _events(times: list[datetime], pad: int = 0, log_name: str = "azure") -> list[Event]:
    return [
        Event(
            timestamp=moment,
            log_set=LogSet.UNPARSED_DATA,
            log_name=log_name,
            # Random hex compresses about twice: a known number of bytes reaches the disk.
            # Stored as a JSON string (the record's base64), as the sizes below were measured with.
            raw=msgspec.Raw(
                msgspec.json.encode(f'{{"i": {i}, "pad": "{os.urandom(pad).hex()}"}}'.encode())
            ),
            source_topic="t",
            source_partition=0,
            source_offset=i,
        )
        for i, moment in enumerate(times)
    ]


def _count(store: EmbeddedStore) -> int:
    return int(store.select("SELECT count() AS n FROM events")[0]["n"])


def test_a_batch_of_150_months_is_stored_whole(data_dir: Path) -> None:
    # ClickHouse refuses an INSERT block over more than 100 partitions; a partition per month
    # lost such a batch (a backfill) while the write reported success.
    months = [datetime(2010 + m // 12, m % 12 + 1, 15, tzinfo=UTC) for m in range(150)]
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events(months))
        assert _count(store) == 150
        (row,) = store.select("SELECT uniqExact(toYYYYMM(timestamp)) AS months FROM events")
        assert row["months"] == 150
    finally:
        store.close()


def test_far_past_and_future_times_are_stored_as_they_are(data_dir: Path) -> None:
    times = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1850, 6, 1, 12, tzinfo=UTC),
        datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ]
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events(times))
        rows = store.select("SELECT toString(timestamp) AS t FROM events ORDER BY source_offset")
        assert [r["t"] for r in rows] == [
            "0001-01-01 00:00:00.000",
            "1850-06-01 12:00:00.000",
            "2299-12-31 23:59:59.000",
            "9999-12-31 23:59:59.999",
        ]
    finally:
        store.close()


def test_a_refused_write_raises_and_stores_nothing(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events([datetime(2026, 1, 1, tzinfo=UTC)] * 3))
        store.execute("ALTER TABLE events MODIFY SETTING max_parts_in_total = 1")
        with pytest.raises(StoreError, match=r"writing 5 events failed: .*TOO_MANY_PARTS") as err:
            store.write(_events([datetime(2026, 2, 1, tzinfo=UTC)] * 5))
        assert not isinstance(err.value, StoreFullError)
        assert "nothing of this batch was stored" in err.value.hint
        assert _count(store) == 3
    finally:
        store.close()


def test_a_full_disk_fails_the_write_whole_and_says_where_then_space_freed_resumes(
    tmp_path: Path,
) -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    with SmallDisk(tmp_path / "disk", 12) as disk:
        store = EmbeddedStore(disk.path)
        try:
            stored = 0
            while shutil.disk_usage(disk.path).free > 4 * 1024 * 1024:
                store.write(_events([day] * 500, pad=1000))
                stored += 500
            assert stored >= 1_000
            # About 5 MB on disk: more than is left.
            big = _events([day] * 5_000, pad=1000)
            with pytest.raises(StoreFullError) as err:
                store.write(big)
            store_dir = str(disk.path / "clickhouse")
            assert err.value.path == store_dir
            assert err.value.free_bytes < 4 * 1024 * 1024
            assert err.value.message.startswith(
                f"writing 5000 events failed: the disk of {store_dir} is full ("
            )
            assert err.value.message.endswith(" MB free)")
            assert err.value.hint == f"free space on the disk of {store_dir} or give it more"
            assert _count(store) == stored
            disk.resize(64)
            store.write(big)
            assert _count(store) == stored + 5_000
        finally:
            store.close()


def test_a_batch_over_10_mb_is_written_as_one_compact_part(data_dir: Path) -> None:
    # ClickHouse writes parts over 10 MB wide by default: two files per column, each fsynced,
    # which cost a batch of the collector's size more than twice the CPU of the compact form.
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events([datetime(2026, 1, 1, tzinfo=UTC)] * 1_500, pad=4_000))
        (part,) = store.select(
            "SELECT part_type, data_uncompressed_bytes AS size FROM system.parts "
            "WHERE active AND table = 'events'"
        )
        assert part["size"] > 12 * 1024 * 1024
        assert part["part_type"] == "Compact"
    finally:
        store.close()


def _old_partitioned_store(data_dir: Path) -> None:
    """An events table as made before: partitioned by month, one column short, unprojected."""
    ddl = _create_events().replace("\nORDER BY", "\nPARTITION BY toYYYYMM(timestamp)\nORDER BY")
    ddl = re.sub(r",\n    PROJECTION [^\n]*\)(?=,?\n)", "", ddl)
    ddl = ddl.replace(",\n    `resource_id` String", "")
    assert "resource_id" not in ddl
    path = data_dir / "clickhouse"
    path.mkdir()
    session = chdb_session.Session(str(path))
    try:
        session.query(ddl)
        session.query(
            "CREATE TABLE hubsight_migrations (version UInt32, name String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
        )
        session.query(
            "ALTER TABLE events ADD INDEX raw_tokens raw "
            "TYPE text(tokenizer = 'splitByNonAlpha') GRANULARITY 64"
        )
        session.query("INSERT INTO hubsight_migrations (version, name) VALUES (1, ''), (2, '')")
        session.query(
            "INSERT INTO events (timestamp, log_set, log_name, raw, source_offset) VALUES "
            "('2025-11-30 23:00:00', 'Unparsed Data', 'azure', 'alpha', 1), "
            "('2025-12-01 01:00:00', 'Unparsed Data', 'azure', 'beta', 2)"
        )
    finally:
        session.close()


def test_an_old_monthly_partitioned_table_is_rebuilt_as_one_partition(data_dir: Path) -> None:
    _old_partitioned_store(data_dir)
    store = EmbeddedStore(data_dir)
    try:
        (table,) = store.select(
            "SELECT partition_key FROM system.tables WHERE name = 'events' "
            "AND database = currentDatabase()"
        )
        assert table["partition_key"] == ""
        assert _merges_bounded(store)
        rows = store.select(
            "SELECT raw, source_offset, resource_id FROM events ORDER BY source_offset"
        )
        assert rows == [
            {"raw": "alpha", "source_offset": 1, "resource_id": ""},
            {"raw": "beta", "source_offset": 2, "resource_id": ""},
        ]
        indexes = store.select(
            "SELECT name FROM system.data_skipping_indices WHERE table = 'events' "
            "AND database = currentDatabase()"
        )
        assert indexes == [{"name": "raw_tokens"}]
        (copy,) = store.select(
            "SELECT count() AS n FROM system.tables WHERE name = 'events_unpartitioned'"
        )
        assert copy["n"] == 0
        store.write(_events([datetime(2001, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)]))
        assert _count(store) == 4
    finally:
        store.close()


def test_a_search_from_year_1_to_9999_runs_and_finds_what_lies_between(data_dir: Path) -> None:
    # It used to overflow Python's datetime, or send year 1 as "1-01-01" that ClickHouse refused.
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events([datetime(2026, 5, 1, tzinfo=UTC)]))
    finally:
        store.close()
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "search", "", "--from", "0001-01-01", "--to",
         "9999-12-31T23:59:59Z", "--log-set", "Unparsed Data", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    times = [e["timestamp"] for e in json.loads(result.stdout)["events"]]
    assert times == ["2026-05-01T00:00:00.000Z"]


def test_a_count_over_a_time_range_counts_each_event_once(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        for batch in index_counted_batches(datetime(2026, 12, 1, tzinfo=UTC)):
            store.write(batch)
    finally:
        store.close()
    window = ["--from", "2026-11-01", "--to", "2026-12-04", "--format", "json"]
    answers = []
    for query in ("calculate(count)", "groupby(log_set)"):
        result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "search", query, *window])
        assert result.exit_code == 0, result.output
        answers.append(sum(row[-1] for row in json.loads(result.stdout)["rows"]))
    # The count was 16,667: the events counted from the index were read again.
    assert answers == [11_999, 11_999]


def test_connections_of_threads_that_ended_are_closed(data_dir: Path) -> None:
    # The API's worker threads end after idling and a writer ends at each reconnect: each used
    # a connection of its own, which must not outlive it for as long as the service runs.
    store = EmbeddedStore(data_dir)
    try:
        for _ in range(3):
            workers = [threading.Thread(target=_count, args=(store,)) for _ in range(8)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        # At most the main thread's and the last round's (closed when another thread opens one).
        assert store.connections <= 9
        last = threading.Thread(target=_count, args=(store,))
        last.start()
        last.join()
        # The newest one opened and closed the eight that ended: the main one and its own stay.
        assert store.connections == 2
        assert _count(store) == 0
    finally:
        store.close()


def test_the_engine_runs_with_bounded_caches(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        rows = store.select("SELECT name, value FROM system.server_settings")
    finally:
        store.close()
    applied = {row["name"]: int(row["value"]) for row in rows if row["name"] in ENGINE_SETTINGS}
    assert applied == ENGINE_SETTINGS
    assert applied["mark_cache_size"] <= 64 * 1024**2
    assert applied["max_server_memory_usage"] == 4 * 1024**3


def _merges_bounded(store: EmbeddedStore) -> bool:
    (table,) = store.select(
        "SELECT engine_full FROM system.tables WHERE name = 'events' "
        "AND database = currentDatabase()"
    )
    return MERGE_PARTS in table["engine_full"]


def test_a_new_store_merges_at_most_ten_parts_at_once(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        assert _merges_bounded(store)
        (bound,) = store.select(
            "SELECT value FROM system.merge_tree_settings WHERE name = 'max_parts_to_merge_at_once'"
        )
        # ClickHouse's own default, which the table's setting overrides.
        assert bound["value"] == "100"
    finally:
        store.close()


# What a process that imports the store has loaded: chdb without pyarrow unless the program
# imported pyarrow itself first.
_IMPORTS = """
import sys
if sys.argv[1] == "pyarrow-first":
    import pyarrow
import hubsight.store.embedded
print(sys.modules["pyarrow"] is not None, "numpy" in sys.modules)
"""


@pytest.mark.parametrize(
    ("first", "loaded"), [("store", "False False"), ("pyarrow-first", "True True")]
)
def test_the_store_does_not_load_pyarrow_for_chdb(first: str, loaded: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, first],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == loaded


def test_a_query_past_the_memory_cap_fails_with_what_to_do(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        # 20M 64-bit numbers gathered in one array: 160 MB, past this query's own 100 MB limit
        # (the same error as past the engine's cap, which a test would need 4 GB to reach).
        with pytest.raises(StoreError, match="MEMORY_LIMIT_EXCEEDED") as caught:
            store.select(
                "SELECT length(groupArray(number)) AS n FROM numbers(20000000) "
                "SETTINGS max_memory_usage = 100000000"
            )
        assert "narrow the search" in caught.value.hint
        # The engine goes on answering, without the failed query's rows in front (chdb keeps
        # them in the connection's buffer).
        assert store.select("SELECT 1 AS one") == [{"one": 1}]
        assert store.connections == 1
    finally:
        store.close()


def test_the_engines_memory_is_read_from_its_allocator_metrics_and_caches(
    data_dir: Path,
) -> None:
    store = EmbeddedStore(data_dir)
    try:
        before = store.memory()
        store.write(_events([datetime(2026, 1, 1, tzinfo=UTC)] * 2_000, pad=100))
        # Reading the part's columns loads their marks into the mark cache.
        store.select("SELECT count() AS n FROM events WHERE raw LIKE '%pad%'")
        after = store.memory()
    finally:
        store.close()
    assert set(after.caches) == set(CACHES)
    # The engine is the process's: the tests before this one in a worker filled the cache.
    assert after.caches["mark"] > before.caches["mark"]
    # Bounded at what the engine was given.
    assert after.caches["mark"] <= ENGINE_SETTINGS["mark_cache_size"]
    # Turned off: nothing is cached.
    assert after.caches["uncompressed"] == 0
    assert after.caches["query"] == 0
    assert after.allocated is not None
    assert after.resident is not None
    assert 0 < after.allocated <= after.resident
    assert after.primary_keys > 0
    assert after.tracked > 0


def test_jemallocs_figures_are_none_when_its_statistics_do_not_say_them() -> None:
    line = "Allocated: 35, active: 37, metadata: 15 (n_thp 0, edata 1), resident: 50, mapped: 71"
    assert jemalloc_figures(f"header\n{line}\nmore") == (35, 50)
    assert jemalloc_figures("no statistics here") == (None, None)
    assert jemalloc_figures(line.replace("resident", "in memory")) == (None, None)
