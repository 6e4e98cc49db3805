"""Log Search benchmark: the issue's six questions in LEQL beside the same questions in SQL.

Usage: ``python bench/search.py [--sizes 1000000 10000000] [--runs 15]``

A pool of events is generated with ``hubsight.simulate``, parsed by hubsight's own parsers and
written batch by batch; the store is then filled to each size by copying the pool inside
ClickHouse with fresh positions and timestamps spread over eight days. Each question runs through
``hubsight.query.search`` (parse, compile, execute, shape the result) and as hand-written
ClickHouse SQL, warm and in turns, and the p50/p95 of each is printed with their ratio, beside
the process CPU time each took (ClickHouse's threads included), which the load of a shared
machine moves far less than wall time. Also printed: bytes per event on disk and the process's
peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.query.search import SearchLimits, SearchRequest, search
from hubsight.simulate import iter_messages
from hubsight.sources.base import Message
from hubsight.store.embedded import EmbeddedStore

END = datetime(2026, 1, 13, tzinfo=UTC)
SPAN = timedelta(days=8)
LIMITS = SearchLimits(time_limit_s=60, result_cap=100_000)
# Copies of the pool per INSERT: fewer rows in flight keep ClickHouse's memory down (at 1M
# events the process peaked at 2.3 GB with two copies per INSERT, 2.0 GB with one).
_COPIES_PER_INSERT = 1
# Events per write while the pool is parsed: about what the collector writes at once (its
# batches stop at 16 MiB of messages). The store takes 500,000, but a batch of 88,000 events
# held 0.7 GB in Python and 1.3 GB more while ClickHouse parsed it.
_POOL_BATCH = 10_000


def _ch_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.000")


def fill(store: EmbeddedStore, messages: int, size: int) -> float:
    """Fill the store to ``size`` events from a pool of parsed messages; seconds taken.

    The pool is generated, parsed and written a batch at a time (never held whole in Python),
    then copied inside ClickHouse a few copies per INSERT, so the benchmark's own memory stays
    small.
    """
    began = time.perf_counter()
    parser = MessageParser(log_name="Azure Event Hub", registry=default_registry())
    batch: list[Any] = []
    for offset, body in enumerate(iter_messages(messages, seed=7)):
        message = Message(topic="pool", partition=0, offset=offset, value=body, received_time=END)
        batch += parser.parse(message)
        if len(batch) >= _POOL_BATCH:
            store.write(batch)
            batch = []
    if batch:
        store.write(batch)
    del batch
    pool = store.select("SELECT count() AS n FROM events")[0]["n"]
    print(f"pool: {pool:,} parsed events in {time.perf_counter() - began:.0f} s")
    # The pool stays in the store (its own timestamps fall inside the span); copies fill the rest.
    copies = -(-(size - pool) // pool)
    span_ms = int(SPAN.total_seconds() * 1000)
    first = _ch_time(END - SPAN)
    for batch_start in range(0, copies, _COPIES_PER_INSERT):
        # Each copy gets its own offsets and its own spread of timestamps over the span.
        store.execute(
            "INSERT INTO events SELECT pool.* REPLACE ("
            "toDateTime64({first:String}, 3, 'UTC') + toIntervalMillisecond("
            "cityHash64(n, pool.source_offset, pool.record_index) % {span:UInt64}) AS timestamp, "
            "'bench' AS source_topic, pool.source_offset * 1000 + n AS source_offset) "
            "FROM (SELECT * FROM events WHERE source_topic = 'pool') AS pool CROSS JOIN "
            "(SELECT number AS n FROM numbers({lo:UInt64}, {hi:UInt64})) AS copies "
            "LIMIT {room:UInt64} SETTINGS max_threads = 1, max_insert_threads = 1",
            {
                "first": first,
                "span": span_ms,
                "lo": batch_start,
                "hi": min(_COPIES_PER_INSERT, copies - batch_start),
                "room": size - pool - batch_start * pool,
            },
        )
    return time.perf_counter() - began


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


def questions(store: EmbeddedStore) -> list[tuple[str, SearchRequest, str, dict[str, Any]]]:
    """(label, LEQL request, hand-written SQL, its parameters) for the six questions."""
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
    return [
        (
            "user's events, last 24 h (newest 100)",
            SearchRequest(query=f'where(user = "{top}")', **last_day),
            f"SELECT * FROM events WHERE {window} AND user = {{u:String}} "  # noqa: S608
            "ORDER BY timestamp DESC LIMIT 100",
            {**day, "u": top},
        ),
        (
            "groupby(geoip_country_code) calculate(count)",
            SearchRequest(query="groupby(geoip_country_code) calculate(count)", **last_week),
            f"SELECT geoip_country_code, count() AS n FROM events WHERE {window} "  # noqa: S608
            "AND geoip_country_code != '' GROUP BY geoip_country_code ORDER BY n DESC LIMIT 40",
            week,
        ),
        (
            "failed by source_ip, unique users, top 10",
            SearchRequest(
                query="where(result ISTARTS-WITH FAILED) groupby(source_ip) "
                "calculate(unique:user) sort(desc) limit(10)",
                **last_week,
            ),
            f"SELECT source_ip, uniqExact(user) AS users FROM events WHERE {window} "  # noqa: S608
            "AND result ILIKE 'failed%' AND source_ip != '' AND user != '' "
            "GROUP BY source_ip ORDER BY users DESC LIMIT 10",
            week,
        ),
        (
            f"keyword '{keyword}', newest 100",
            SearchRequest(query=keyword, **last_week),
            f"SELECT * FROM events WHERE {window} AND hasToken(raw, {{k:String}}) "  # noqa: S608
            "ORDER BY timestamp DESC LIMIT 100",
            {**week, "k": keyword},
        ),
        (
            f"keyword '{keyword}', count over all",
            SearchRequest(query=f"{keyword} calculate(count)", **last_week),
            f"SELECT count() FROM events WHERE {window} AND hasToken(raw, {{k:String}})",  # noqa: S608
            {**week, "k": keyword},
        ),
        (
            "timeslice(1h) over 7 days",
            SearchRequest(query="timeslice(1h)", **last_week),
            f"SELECT toStartOfHour(timestamp) AS h, count() FROM events WHERE {window} "  # noqa: S608
            "GROUP BY h ORDER BY h",
            week,
        ),
    ]


def bench_size(size: int, messages: int, runs: int, keep: Path | None) -> None:
    """Fill a store to ``size`` (unless ``keep`` already holds it) and print every figure."""
    with tempfile.TemporaryDirectory(prefix="hubsight-bench-") as tmp:
        store = EmbeddedStore(keep / str(size) if keep else Path(tmp))
        try:
            held = store.select("SELECT count() AS n FROM events")[0]["n"]
            seconds = fill(store, messages, size) if held == 0 else 0.0
            stored = store.select("SELECT count() AS n FROM events")[0]["n"]
            disk = store.select(
                "SELECT sum(data_compressed_bytes) AS data, "
                "sum(secondary_indices_compressed_bytes) AS idx FROM system.parts "
                "WHERE table = 'events' AND active"
            )[0]
            print(f"\n== {stored:,} events (filled in {seconds:.0f} s)")
            print(
                f"bytes/event on disk: {(disk['data'] + disk['idx']) / stored:.0f} "
                f"(columns {disk['data'] / stored:.0f}, full-text index {disk['idx'] / stored:.0f})"
            )
            print(
                f"{'question':44} {'LEQL p50/p95 ms':>17} {'SQL p50/p95 ms':>16} {'ratio':>6} "
                f"{'CPU ms LEQL/SQL':>16} {'ratio':>6}"
            )
            for label, request, sql, params in questions(store):
                leql, hand = timed_pair(
                    lambda r=request: search(store, r, LIMITS),  # type: ignore[misc]
                    lambda s=sql, p=params: store.select(s, p),  # type: ignore[misc]
                    runs,
                )
                print(
                    f"{label:44} {leql[0]:8.1f}/{leql[1]:<8.1f} {hand[0]:7.1f}/{hand[1]:<8.1f} "
                    f"{leql[0] / hand[0]:6.2f} {leql[2]:7.1f}/{hand[2]:<8.1f} "
                    f"{leql[2] / hand[2]:6.2f}"
                )
            _index_difference(store, questions(store)[4], runs)
        finally:
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process memory so far: {peak:.0f} MiB")


def _index_difference(
    store: EmbeddedStore, question: tuple[str, SearchRequest, str, dict[str, Any]], runs: int
) -> None:
    _, _, sql, params = question
    indexed = timed(lambda: store.select(sql, params), runs)
    # A scan of every raw record takes seconds: a few runs tell its median.
    scan = timed(lambda: store.select(sql + " SETTINGS use_skip_indexes = 0", params), 3)
    print(
        f"keyword count with the full-text index {indexed[0]:.1f} ms p50, "
        f"without it (scan) {scan[0]:.1f} ms p50: {scan[0] / indexed[0]:.0f}x"
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
    for size in args.sizes:
        bench_size(size, args.pool_messages, args.runs, args.keep)


if __name__ == "__main__":
    main()
