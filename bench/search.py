"""Log Search benchmark: the issue's six questions in LEQL beside the same questions in SQL.

Usage: ``python bench/search.py [--sizes 1000000 10000000] [--runs 15]``

A pool of events is generated with ``hubsight.simulate``, parsed by hubsight's own parsers and
written batch by batch; the store is then filled to each size by copying the pool inside
ClickHouse, at most 25,000 events per INSERT, with fresh positions and timestamps spread over
eight days, into a stage table merged every 8 INSERTs and attached (README, "Tests and
benchmarks", says why and what costs memory). Each question runs through
``hubsight.query.search`` (parse, compile, execute, shape the result) and as hand-written
ClickHouse SQL; the two answers must be equal (else the bench stops), then both run warm and in
turns, and the p50/p95 of each is printed with their ratio, beside the process CPU time each
took (ClickHouse's threads included), which the load of a shared machine moves far less than
wall time. Also printed: bytes per event on disk, the process's peak memory while filling and
while searching, and the load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight import allocator
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.query.search import (
    SearchLimits,
    SearchRequest,
    SearchResult,
    ch_iso,
    event_id,
    iso,
    parse_ch_time,
    search,
)
from hubsight.simulate import iter_messages
from hubsight.sources.base import Message
from hubsight.store.embedded import EmbeddedStore

END = datetime(2026, 1, 13, tzinfo=UTC)
SPAN = timedelta(days=8)
LIMITS = SearchLimits(time_limit_s=60, result_cap=100_000)
# Events per write while the pool is parsed: about what the collector writes at once (its
# batches stop at 16 MiB of messages). A batch of 88,000 events held 0.7 GB in Python and 1.3 GB
# more while ClickHouse parsed it.
_POOL_BATCH = 10_000
# The pool is copied a slice of at most this many events at a time: ClickHouse holds an INSERT's
# whole block, about three times its 3.4 KB per event (the block, the sorted copies its
# projections make, a write buffer per column of 97), so a whole pool of 88,000 took 0.9 GB.
_COPY_ROWS = 25_000
# Copies are gathered in a table of the same structure, this many INSERTs at a time, and merged
# there into one part (with its full-text index), which joins the events table: each copied
# event is merged once. Left to ClickHouse's merges, parts of 25,000 were merged again and again
# on their way to millions (most of a merge's CPU is compressing raw and building its full-text
# index): 6M events took 85 minutes. A merge holds ~90 MB per part it reads (these small parts
# are compact: all columns in one file) and 40 parts at once passed the engine's 2 GB cap.
_ROUND_PARTS = 8
_STAGE = "events_bench_stage"


def _ch_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.000")


def fill(store: EmbeddedStore, messages: int, size: int) -> float:
    """Fill the store to ``size`` events from a pool of parsed messages; seconds taken.

    The pool is generated, parsed and written a batch at a time (never held whole in Python),
    then copied inside ClickHouse a slice per INSERT, never beside a merge, so the benchmark's
    own memory stays small. The events table's merges are stopped while it copies, and
    started again when it is done or fails.
    """
    began = time.perf_counter()
    parser = MessageParser(log_name="Azure Event Hub", registry=default_registry())
    batch: list[Any] = []
    for offset, body in enumerate(iter_messages(messages, seed=7)):
        message = Message(topic="pool", partition=0, offset=offset, value=body, received_time=END)
        batch += parser.parse(message)
        if len(batch) >= _POOL_BATCH:
            _merges_done(store)
            allocator.trim()
            store.write(batch)
            batch = []
    if batch:
        store.write(batch)
    del batch
    pool = _count(store)
    print(f"pool: {pool:,} parsed events in {time.perf_counter() - began:.0f} s", flush=True)
    # The pool stays in the store (its own timestamps fall inside the span); copies fill the rest.
    slices = -(-pool // _COPY_ROWS)
    copies = ((copy, (part, slices)) for copy in itertools.count(1) for part in range(slices))
    _merges_done(store)
    with merges_stopped(store):
        _copy_rounds(store, pool, size, copies, began)
    return time.perf_counter() - began


@contextmanager
def merges_stopped(store: EmbeddedStore) -> Iterator[None]:
    """The events table's merges stopped inside the block, started again however it ends:
    stopped merges hold every later mutation of the table (a retention change waits for ever)
    and outlast the fill in the store the caller goes on with."""
    store.execute("SYSTEM STOP MERGES events")
    try:
        yield
    finally:
        store.execute("SYSTEM START MERGES events")


def _copy_rounds(
    store: EmbeddedStore,
    pool: int,
    size: int,
    copies: Iterator[tuple[int, tuple[int, int]]],
    began: float,
) -> None:
    """Copy the pool until the store holds ``size`` events, a round of parts at a time."""
    # The events table's own merges (stopped by the caller) would merge the rounds' parts
    # again: hours at 10M.
    store.execute(f"CREATE TABLE {_STAGE} AS events")
    try:
        # The stage's parts are merged only when asked (OPTIMIZE ... FINAL).
        store.execute(
            f"ALTER TABLE {_STAGE} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1"
        )
        stored = pool
        while stored < size:
            staged = 0
            for copy, part in itertools.islice(copies, _ROUND_PARTS):
                allocator.trim()
                _copy(store, copy, part, size - stored - staged)
                staged = _count(store, _STAGE)
                if stored + staged >= size:
                    break
            allocator.trim()
            store.execute(f"OPTIMIZE TABLE {_STAGE} FINAL")
            store.execute(f"ALTER TABLE events ATTACH PARTITION tuple() FROM {_STAGE}")
            store.execute(f"TRUNCATE TABLE {_STAGE}")
            stored = _count(store)
            print(f"{stored:,} events at {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        store.execute(f"DROP TABLE IF EXISTS {_STAGE} SYNC")


def _copy(store: EmbeddedStore, copy: int, part: tuple[int, int], room: int) -> None:
    """Stage slice ``part`` (i of n) of the pool as copy ``copy``: its own offsets, its own
    spread of times, at most ``room`` events.

    Written as the collector writes (``EmbeddedStore.write``): projections on insert, the
    full-text index by the merge that follows.
    """
    store.execute(
        f"INSERT INTO {_STAGE} SELECT * REPLACE ("  # noqa: S608 - our own table name
        "toDateTime64({first:String}, 3, 'UTC') + toIntervalMillisecond("
        "cityHash64({copy:UInt64}, source_offset, record_index) % {span:UInt64}) AS timestamp, "
        "'bench' AS source_topic, source_offset * 1000 + {copy:UInt64} AS source_offset) "
        # Filtered inside: outside, the names above would stand for the copy's columns.
        "FROM (SELECT * FROM events WHERE source_topic = 'pool' "
        "AND source_offset % {slices:UInt64} = {part:UInt64} LIMIT {room:UInt64}) "
        "SETTINGS max_threads = 1, max_insert_threads = 1, materialize_skip_indexes_on_insert = 0",
        {
            "first": _ch_time(END - SPAN),
            "span": int(SPAN.total_seconds() * 1000),
            "copy": copy,
            "part": part[0],
            "slices": part[1],
            "room": room,
        },
    )


def _count(store: EmbeddedStore, table: str = "events") -> int:
    return int(store.select(f"SELECT count() AS n FROM {table}")[0]["n"])  # noqa: S608


def _merges_done(store: EmbeddedStore) -> None:
    """Wait while ClickHouse merges parts: a merge holds 0.3-0.6 GB, an INSERT beside it more."""
    while store.select("SELECT count() AS n FROM system.merges")[0]["n"]:
        time.sleep(0.5)


def timed(run: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``runs`` warm runs."""
    run()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    return _p50_p95(samples)


def _p50_p95(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def _cpu_ms() -> float:
    # The process's CPU time, ClickHouse's threads included: unlike wall time, it is barely
    # moved by what else runs on a shared machine.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def timed_pair(
    first: Callable[[], object], second: Callable[[], object], runs: int
) -> list[tuple[float, float, float]]:
    """(wall p50, wall p95, CPU p50) in ms of each of two runs, warm and taken in turns.

    In turns, so that a burst of load from elsewhere weighs on both sides alike.
    """
    first()
    second()
    samples: list[tuple[list[float], list[float]]] = [([], []), ([], [])]
    for _ in range(runs):
        for run, (wall, cpu) in zip((first, second), samples, strict=True):
            cpu_began, began = _cpu_ms(), time.perf_counter()
            run()
            wall.append((time.perf_counter() - began) * 1000)
            cpu.append(_cpu_ms() - cpu_began)
    return [(*_p50_p95(wall), statistics.median(cpu)) for wall, cpu in samples]


@dataclass(frozen=True, kw_only=True)
class Question:
    """One question in LEQL and in hand-written SQL, and how to compare their answers."""

    label: str
    request: SearchRequest
    sql: str
    params: dict[str, Any]
    # The hand SQL's LIMIT, where it may cut the answer inside a run of tied ranks.
    limit: int | None = None


def questions(store: EmbeddedStore) -> list[Question]:
    """The six questions."""
    top = store.select(
        "SELECT user, count() AS n FROM events WHERE user != '' GROUP BY user "
        "ORDER BY n DESC LIMIT 1"
    )[0]["user"]
    keyword = top.split("@")[0].split(".")[0]
    week = {"start": _ch_time(END - timedelta(days=7)), "end": _ch_time(END)}
    day = {"start": _ch_time(END - timedelta(days=1)), "end": _ch_time(END)}
    window = "timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}"
    last_week = {"start": (END - timedelta(days=7)).isoformat(), "end": END.isoformat()}
    last_day = {"start": (END - timedelta(days=1)).isoformat(), "end": END.isoformat()}

    def request(query: str, scope: dict[str, str]) -> SearchRequest:
        return SearchRequest(query=query, start=scope["start"], end=scope["end"])

    return [
        Question(
            label="user's events, last 24 h (newest 100)",
            request=request(f'where(user = "{top}")', last_day),
            sql=f"SELECT * FROM events WHERE {window} AND user = {{u:String}} "  # noqa: S608
            "ORDER BY timestamp DESC LIMIT 100",
            params={**day, "u": top},
            limit=100,
        ),
        Question(
            label="groupby(geoip_country_code) calculate(count)",
            request=request("groupby(geoip_country_code) calculate(count)", last_week),
            sql=f"SELECT geoip_country_code, count() AS n FROM events WHERE {window} "  # noqa: S608
            "AND geoip_country_code != '' GROUP BY geoip_country_code ORDER BY n DESC LIMIT 40",
            params=week,
            limit=40,
        ),
        Question(
            label="failed by source_ip, unique users, top 10",
            request=request(
                "where(result ISTARTS-WITH FAILED) groupby(source_ip) "
                "calculate(unique:user) sort(desc) limit(10)",
                last_week,
            ),
            sql=f"SELECT source_ip, uniqExact(user) AS users FROM events WHERE {window} "  # noqa: S608
            "AND result ILIKE 'failed%' AND source_ip != '' AND user != '' "
            "GROUP BY source_ip ORDER BY users DESC LIMIT 10",
            params=week,
            limit=10,
        ),
        Question(
            label=f"keyword '{keyword}', newest 100",
            request=request(keyword, last_week),
            sql=f"SELECT * FROM events WHERE {window} AND hasToken(raw, {{k:String}}) "  # noqa: S608
            "ORDER BY timestamp DESC LIMIT 100",
            params={**week, "k": keyword},
            limit=100,
        ),
        Question(
            label=f"keyword '{keyword}', count over all",
            request=request(f"{keyword} calculate(count)", last_week),
            sql=f"SELECT count() FROM events WHERE {window} "  # noqa: S608
            "AND hasToken(raw, {k:String})",
            params={**week, "k": keyword},
        ),
        Question(
            label="timeslice(1h) over 7 days",
            request=request("timeslice(1h)", last_week),
            sql=f"SELECT toStartOfHour(timestamp) AS h, count() FROM events "  # noqa: S608
            f"WHERE {window} GROUP BY h ORDER BY h",
            params=week,
        ),
    ]


def check_same(question: Question, result: SearchResult, rows: list[dict[str, Any]]) -> None:
    """Raise unless LEQL's answer is the hand SQL's.

    Both are compared as (rank, ...) rows: an event is (time, id), a group (its figure, its
    key), a bucket (its start, its count; LEQL's empty buckets left out). The ranks must be
    equal in order; so must the rows as sets, except those tied with the last rank of an answer
    the LIMIT may have cut, which either side may pick among.
    """
    leql: list[tuple[Any, ...]]
    hand: list[tuple[Any, ...]]
    if result.kind == "events":
        leql = [(e["timestamp"], e["id"]) for e in result.events]
        hand = [(ch_iso(r["timestamp"]), event_id(r)) for r in rows]
    elif result.kind == "timeseries":
        leql = [(when, n) for when, n in result.rows if n]
        hand = [(iso(parse_ch_time(str(r["h"]))), r["count()"]) for r in rows]
    else:
        leql = [(row[-1], *row[:-1]) for row in result.rows]
        hand = [(values[-1], *values[:-1]) for values in (list(r.values()) for r in rows)]
    cut = question.limit is not None and len(hand) == question.limit and hand
    tied = hand[-1][0] if cut else object()
    if [r[0] for r in leql] != [r[0] for r in hand] or {r for r in leql if r[0] != tied} != {
        r for r in hand if r[0] != tied
    }:
        raise SystemExit(f"{question.label}: LEQL answered {leql[:5]}..., SQL {hand[:5]}...")


def bench_size(size: int, messages: int, runs: int, keep: Path | None) -> None:
    """Fill a store to ``size`` (unless ``keep`` already holds it) and print every figure."""
    with tempfile.TemporaryDirectory(prefix="hubsight-bench-") as tmp:
        store = EmbeddedStore(keep / str(size) if keep else Path(tmp))
        try:
            _reset_peak()
            seconds = fill(store, messages, size) if _count(store) == 0 else 0.0
            # The events table's merges stay stopped while the questions run, so nothing runs
            # beside them and the store is searched as filled (``fill`` starts them again).
            store.execute("SYSTEM STOP MERGES events")
            filling = _peak_mib()
            _reset_peak()
            stored = _count(store)
            disk = store.select(
                "SELECT sum(data_compressed_bytes) AS data, "
                "sum(secondary_indices_compressed_bytes) AS idx, count() AS parts "
                "FROM system.parts WHERE table = 'events' AND active"
            )[0]
            print(
                f"\n== {stored:,} events in {disk['parts']} parts (filled in {seconds:.0f} s, "
                f"peak process memory {filling:,} MiB; load average {_load()})"
            )
            print(
                f"bytes/event on disk: {(disk['data'] + disk['idx']) / stored:.0f} "
                f"(columns {disk['data'] / stored:.0f}, full-text index {disk['idx'] / stored:.0f})"
            )
            print(
                f"{'question':44} {'LEQL p50/p95 ms':>17} {'SQL p50/p95 ms':>16} {'ratio':>6} "
                f"{'CPU ms LEQL/SQL':>16} {'ratio':>6}"
            )
            for question in questions(store):
                check_same(
                    question,
                    search(store, question.request, LIMITS),
                    store.select(question.sql, question.params),
                )
                leql, hand = timed_pair(
                    lambda r=question.request: search(store, r, LIMITS),  # type: ignore[misc]
                    lambda q=question: store.select(q.sql, q.params),  # type: ignore[misc]
                    runs,
                )
                print(
                    f"{question.label:44} {leql[0]:8.1f}/{leql[1]:<8.1f} "
                    f"{hand[0]:7.1f}/{hand[1]:<8.1f} {leql[0] / hand[0]:6.2f} "
                    f"{leql[2]:7.1f}/{hand[2]:<8.1f} {leql[2] / hand[2]:6.2f}"
                )
            print("every LEQL answer equals the hand SQL's")
            _index_difference(store, questions(store)[4], runs)
        finally:
            store.close()
    print(f"peak process memory while searching: {_peak_mib():,} MiB (load average {_load()})")


def _peak_mib() -> int:
    """The process's peak resident memory since the last ``_reset_peak`` (Linux's VmHWM)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) // 1024


def _reset_peak() -> None:
    # Writing 5 to clear_refs restarts VmHWM from the current resident size (Linux 4.0+).
    Path("/proc/self/clear_refs").write_text("5")


def _load() -> str:
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def _index_difference(store: EmbeddedStore, question: Question, runs: int) -> None:
    indexed = timed(lambda: store.select(question.sql, question.params), runs)
    # A scan of every raw record takes seconds (a minute at 10M under load): one run, after
    # the questions have read the part files into the page cache.
    began = time.perf_counter()
    store.select(question.sql + " SETTINGS use_skip_indexes = 0", question.params)
    scan = (time.perf_counter() - began) * 1000
    print(
        f"keyword count with the full-text index {indexed[0]:.1f} ms p50, "
        f"without it (scan) {scan:.0f} ms: {scan / indexed[0]:.0f}x"
    )


def main() -> None:
    """Run the benchmark for every requested size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pool-messages", type=int, default=1600)
    parser.add_argument(
        "--keep", type=Path, help="Keep the stores under this directory and reuse them next time."
    )
    args = parser.parse_args()
    # As ``hubsight run`` does: the engine's threads each kept a malloc arena of freed memory.
    allocator.limit_arenas()
    for size in args.sizes:
        bench_size(size, args.pool_messages, args.runs, args.keep)


if __name__ == "__main__":
    main()
