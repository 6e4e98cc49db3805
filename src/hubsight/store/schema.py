"""The ``events`` table: its columns derive from ``Event``; its history is versioned migrations.

Each migration runs once and is recorded in ``hubsight_migrations``. Columns for fields added
to ``Event`` later are added by the last step, so a new normalized field needs no hand-written
DDL; anything else (codecs, indexes, ordering) is a new numbered migration.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime

import msgspec

from hubsight import __version__
from hubsight.errors import StoreError
from hubsight.parsing.event import Event, LogSet

EVENTS_TABLE = "events"

# Low-cardinality columns are dictionary-encoded: a fraction of the bytes and faster group-bys.
_LOW_CARDINALITY = {
    "log_set",
    "log_name",
    "category",
    "operation",
    "result",
    "source_topic",
    "account_domain",
    "geoip_country_code",
    "geoip_country_name",
    "geoip_region",
    "service",
    "application",
    "resource",
    "client_app",
    "authentication_requirement",
    "authentication_protocol",
    "mfa_method",
    "conditional_access_status",
    "risk_level",
    "risk_state",
    "device_os",
    "browser",
    "device_trust",
    "actor_type",
    "target_type",
    "severity",
    "vendor",
    "product",
    "status",
    "alert_type",
    "failure_reason",
    "http_method",
    "auth_type",
    "namespace",
    "protocol",
}
# Large text columns get stronger compression than the default LZ4.
_CODECS = {
    "raw": "CODEC(ZSTD(3))",
    "modified_properties": "CODEC(ZSTD(3))",
    "entities": "CODEC(ZSTD(3))",
}


def _sql_type(name: str, annotation: object) -> str:
    args = typing.get_args(annotation)
    optional = isinstance(annotation, types.UnionType) and type(None) in args
    inner = next((a for a in args if a is not type(None)), annotation) if optional else annotation
    if inner is msgspec.Raw or inner is str or inner is LogSet:
        base = "String"
        if name in _LOW_CARDINALITY:
            base = "LowCardinality(String)"
        return base  # absent strings are '' : ClickHouse's idiom, cheaper than Nullable
    if typing.get_origin(inner) is list:
        return "Array(String)"
    scalar = {datetime: "DateTime64(3, 'UTC')", int: "Int64", float: "Float64", bool: "Bool"}[
        typing.cast(type, inner)
    ]
    return f"Nullable({scalar})" if optional else scalar


def event_columns() -> list[tuple[str, str]]:
    """Every column of the events table with its ClickHouse type and codec."""
    hints = typing.get_type_hints(Event)
    columns = []
    for field in msgspec.structs.fields(Event):
        sql = _sql_type(field.name, hints[field.name])
        codec = _CODECS.get(field.name)
        columns.append((field.name, f"{sql} {codec}" if codec else sql))
    return columns


# The entity pages ask about one user, address or resource (or list every user) over weeks of
# events, which the table's order (log set, log name, time) cannot narrow: each answer read every
# event. These projections keep, in every part, the few columns those pages read sorted by the
# entity (and a per-user, per-day aggregate), so each page reads only its entity's rows. They are
# parts of the table: written with each insert, merged and expired (TTL) with it, and kept by
# BACKUP. ``query.entities`` writes its SQL so that ClickHouse picks them (a test checks it).
PROJECTIONS = {
    "by_user": "SELECT user, timestamp, mfa_method, device_os, browser, application, "
    "geoip_country_code, source_ip, result ORDER BY lower(user), timestamp",
    "by_resource": "SELECT resource_id, timestamp, operation, user, result "
    "ORDER BY lower(resource_id), timestamp",
    # Per day sums: a query must write its aggregates and keys exactly as here to be answered
    # from them, and counts whole days. uniq, not uniqExact: merging exact sets of addresses
    # cost the Users page more than the rest of its read (uniq is exact up to tens of
    # thousands of values, then close).
    "users_daily": "SELECT lower(user), toDate(timestamp), count(), max(timestamp), "
    "uniq(source_ip), countIf(result NOT IN ('SUCCESS', '')) "
    "GROUP BY lower(user), toDate(timestamp)",
    "addresses_daily": "SELECT source_ip, toDate(timestamp), lower(user), result, count(), "
    "min(timestamp), max(timestamp), any(geoip_country_code), any(geoip_city), "
    "any(geoip_organization), any(source_ip_scope) "
    "GROUP BY source_ip, toDate(timestamp), lower(user), result",
}


# Parts up to this size (uncompressed) are written compact: every column in one file, instead
# of two files per column (about 440 with the projections', each fsynced and given its own
# write buffer). A collector's batch (up to 16 MB of records, ~20 MB as columns) is over
# ClickHouse's default 10 MB, and compact cost the engine less than half the CPU to write, with
# 10 fsyncs instead of 436 (``bench/ingest.py``). Merges write larger parts wide, as before.
COMPACT_PARTS = "min_bytes_for_wide_part = 268435456"

# At most this many parts go into one merge (ClickHouse's default is 100). A merge holds ~25 MB
# of the engine's memory per wide part it reads (a 32-part merge of 10M events ~0.9 GB, 8-part
# merges ~150-220 MB each; README, "Memory"); parts that pile up (after a backlog, a restart)
# are merged in more rounds instead, each writing its rows once more.
MERGE_PARTS = "max_parts_to_merge_at_once = 10"


def _create_events(table: str = EVENTS_TABLE) -> str:
    columns = [f"`{name}` {sql}" for name, sql in event_columns()]
    projections = [f"PROJECTION {name} ({select})" for name, select in PROJECTIONS.items()]
    body = ",\n    ".join(columns + projections)
    # Ordered by log set, log name and event time: every search is scoped to those three, so
    # the primary index skips everything outside them. fsync on insert makes a returned insert
    # durable, which is what lets the collector commit Kafka offsets right after it.
    # Not partitioned: an INSERT is atomic only within one partition, and ClickHouse refuses a
    # block spanning over 100 partitions, so monthly partitions made a batch that crosses a
    # month boundary half-storable and one spanning 100 months (a backfill, skewed clocks)
    # unstorable. One partition keeps every batch one part: all of it or none.
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
    {body}
) ENGINE = MergeTree
ORDER BY (log_set, log_name, timestamp)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1, {COMPACT_PARTS}, {MERGE_PARTS}
"""


_RAW_INDEX = "raw_tokens raw TYPE text(tokenizer = 'splitByNonAlpha') GRANULARITY 64"


SAVED_QUERIES_TABLE = "saved_queries"

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "create events", [_create_events()]),
    # Keyword search (LEQL's token-bounded, case-sensitive match) is served by this index: a
    # keyword count over 1M events reads the index, not the raw records.
    (
        2,
        "full-text index on raw",
        [
            f"ALTER TABLE {EVENTS_TABLE} ADD INDEX IF NOT EXISTS {_RAW_INDEX}",
            f"ALTER TABLE {EVENTS_TABLE} MATERIALIZE INDEX raw_tokens SETTINGS mutations_sync = 1",
        ],
    ),
    # Saved LEQL searches; a row per version, the newest wins, ``deleted`` marks a removal.
    (
        3,
        "saved queries",
        [
            f"CREATE TABLE IF NOT EXISTS {SAVED_QUERIES_TABLE} (id String, name String, "
            "query String, scope String, created_at DateTime64(3, 'UTC'), "
            "updated_at DateTime64(3, 'UTC'), version UInt64, deleted Bool) "
            "ENGINE = ReplacingMergeTree(version) ORDER BY id"
        ],
    ),
    # Each saved query has an owner, who alone (with admins) changes it, and may share it
    # read-only. Queries saved before had no owner and every analyst saw them: they stay seen
    # by everyone (shared) and become the admins' to change. The default must stay true:
    # ClickHouse computes a column added later from its current default in parts written before.
    (
        4,
        "saved query owners",
        [
            f"ALTER TABLE {SAVED_QUERIES_TABLE} ADD COLUMN IF NOT EXISTS owner String",
            f"ALTER TABLE {SAVED_QUERIES_TABLE} ADD COLUMN IF NOT EXISTS shared Bool DEFAULT true",
        ],
    ),
    # Tables made before the projections get them, and their events are projected once (a
    # mutation, like the index above); a table made since has them from its CREATE. One ALTER
    # each: every ALTER waits on the table's metadata, which costs each new store (every test).
    (
        5,
        "entity projections",
        [
            f"ALTER TABLE {EVENTS_TABLE} "
            + ", ".join(
                f"ADD PROJECTION IF NOT EXISTS {name} ({select})"
                for name, select in PROJECTIONS.items()
            ),
            f"ALTER TABLE {EVENTS_TABLE} "
            + ", ".join(f"MATERIALIZE PROJECTION {name}" for name in PROJECTIONS)
            + " SETTINGS mutations_sync = 1",
        ],
    ),
    # Batches written as compact parts (see ``COMPACT_PARTS``); parts already written stay as
    # they are until merged.
    (
        6,
        "compact parts for batches",
        [f"ALTER TABLE {EVENTS_TABLE} MODIFY SETTING {COMPACT_PARTS}"],
    ),
    # Merges bounded in parts (see ``MERGE_PARTS``); a merge already running keeps its parts.
    (
        7,
        "merges of at most ten parts",
        [f"ALTER TABLE {EVENTS_TABLE} MODIFY SETTING {MERGE_PARTS}"],
    ),
]


# Migrations whose effect the table migration 1 creates already has: a store made by this
# release records them as applied without running them (an ALTER of the events table costs a new
# store a second, even when it changes nothing).
_IN_CREATE = {5, 6, 7}


def pending_migrations(applied: set[int]) -> list[tuple[int, str, list[str]]]:
    """The migrations a store that has ``applied`` still needs, each with what to run."""
    fresh = 1 not in applied
    return [
        (version, name, [] if fresh and version in _IN_CREATE else statements)
        for version, name, statements in MIGRATIONS
        if version not in applied
    ]


def check_not_newer(applied: set[int], where: str) -> None:
    """Refuse an event store with migrations this release does not know (a downgrade)."""
    newest = max(version for version, _name, _statements in MIGRATIONS)
    if applied and max(applied) > newest:
        raise StoreError(
            f"the event store in {where} has schema version {max(applied)}; this hubsight "
            f"{__version__} knows up to {newest}: it was written by a newer hubsight",
            hint="run that release or a newer one (downgrades are not supported), or restore "
            "a backup taken before the upgrade",
        )


def missing_column_ddl(existing: set[str]) -> list[str]:
    """ALTER statements adding the columns of Event fields the table does not have yet."""
    return [
        f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN IF NOT EXISTS `{name}` {sql}"
        for name, sql in event_columns()
        if name not in existing
    ]


_UNPARTITIONED = f"{EVENTS_TABLE}_unpartitioned"


def unpartition_ddl(partition_key: str) -> list[str]:
    """Statements that rebuild an events table partitioned by month (as made before) as one.

    Run after ``missing_column_ddl``, so the old table has every column. Each step can be run
    again after a crash: the copy starts over until the tables are exchanged, and a leftover
    copy is dropped on the next start.
    """
    if not partition_key:
        return [f"DROP TABLE IF EXISTS {_UNPARTITIONED} SYNC"]
    names = ", ".join(f"`{name}`" for name, _ in event_columns())
    return [
        f"DROP TABLE IF EXISTS {_UNPARTITIONED} SYNC",
        _create_events(_UNPARTITIONED),
        f"ALTER TABLE {_UNPARTITIONED} ADD INDEX {_RAW_INDEX}",
        # Names and tables are our own constants.
        f"INSERT INTO {_UNPARTITIONED} ({names}) SELECT {names} FROM {EVENTS_TABLE}",  # noqa: S608
        f"EXCHANGE TABLES {EVENTS_TABLE} AND {_UNPARTITIONED}",
        f"DROP TABLE {_UNPARTITIONED} SYNC",
    ]
