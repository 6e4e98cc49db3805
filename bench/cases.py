"""Case retention benchmark: the disk each alert takes, and how fast closed cases are deleted.

Feeds a simulated tenant (as ``bench/detect.py`` does: every scenario planted, the built-in
rules, the shipped Sigma content and the rules of ``--sigma-dir``) to a persisted engine, then
prints the alerts and investigations it stored and the bytes the case tables take per alert
(SQLite's own page count, indexes included: what an operator's disk holds). Then closes every
investigation and deletes them all with case retention, chunk by chunk, printing the time each
chunk held the database (what the engine's next batch may wait) and the alerts deleted per
second. The machine's load average is printed with the figures.

    .venv/bin/python bench/cases.py                                   # 200 users, 6 hours
    .venv/bin/python bench/cases.py --users 1000 --days 1 --hours 0 --rate 3.4 \
        --sigma-dir /work/ext/sigmahq-azure          # a day of a 1,000-user tenant
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

# The repository root: this script imports its sibling as ``bench.detect``, as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions, tune_gc
from hubsight.detect.expiry import CHUNK, DAY_S, Walk, case_bytes, expire_chunk, usage

from bench.detect import START, _load, batches, ruleset, tenant_args, warmup


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tenant_args(ap)
    ap.add_argument("--chunk", type=int, default=CHUNK, help="alerts deleted per transaction")
    args = ap.parse_args()
    tune_gc()
    print(f"start: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = DetectDB(Path(tmp) / "detect.sqlite3")
        learning = max(timedelta(hours=args.learning_hours), warmup(args))
        options = EngineOptions(learning=learning)
        engine = DetectionEngine(db, ruleset(args, everything=True), options=options)
        began = time.perf_counter()
        events = 0
        for batch in batches(args, []):
            engine.process(batch)
            events += len(batch)
        print(f"{events:,} events detected on in {time.perf_counter() - began:.0f} s")
        stored = usage(db, None)
        alerts, investigations = stored["alerts"], stored["investigations"]
        size = case_bytes(db)
        whole = stored["bytes_on_disk"]
        # The warm-up's alerts are stored too: the rate is over all the simulated time.
        span_days = (args.days * 24 + args.hours + args.warmup_hours) / 24
        print(
            f"stored: {alerts:,} alerts ({_count(db, 'notable = 1'):,} notables), "
            f"{investigations:,} investigations, {size / 1e6:.1f} MB in the case tables: "
            f"{size / max(alerts, 1):,.0f} bytes per alert (the database: {whole / 1e6:.1f} MB)"
        )
        sizes = sorted(
            int(r[0])
            for r in db.rows("SELECT count(*) FROM investigation_alerts GROUP BY investigation_id")
        )
        if sizes:
            print(
                f"alerts per investigation: median {statistics.median(sizes):.0f}, "
                f"99th percentile {sizes[len(sizes) * 99 // 100]}, largest {sizes[-1]} "
                "(one investigation goes in one transaction)"
            )
        if span_days:
            per_day = alerts / span_days * 1000 / args.users
            print(
                f"per 1,000 users per day: {per_day:,.0f} alerts, "
                f"{per_day * size / max(alerts, 1) / 1e6:,.1f} MB; a year: "
                f"{per_day * 365 * size / max(alerts, 1) / 1e9:,.1f} GB"
            )
        with db.transaction() as conn:
            conn.execute("UPDATE investigations SET status = 'closed'")
            conn.execute("UPDATE alerts SET status = 'closed'")
        now = time.time() + 2 * DAY_S
        held: list[float] = []
        deleted = 0
        walk = Walk()
        passes, passed = 1, 0
        began = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            chunk = expire_chunk(db, 1, now, args.chunk, walk)
            held.append(time.perf_counter() - t0)
            deleted += len(chunk.gone)
            passed += len(chunk.gone)
            if not chunk.more:
                # The end of the walks: again from the start, unless this pass deleted nothing
                # (a notable whose alert went after it was looked at goes in the next pass).
                if not passed:
                    break
                passes, passed = passes + 1, 0
        took = time.perf_counter() - began
        print(
            f"deleted {deleted:,} alerts in {took:.1f} s ({deleted / took:,.0f}/s), "
            f"{len(held)} chunks of {args.chunk} in {passes} passes: each held the database "
            f"{statistics.median(held) * 1000:.0f} ms median, {max(held) * 1000:.0f} ms at most"
        )
        print(f"left: {_count(db, '1 = 1')} alerts ({_count(db, 'notable = 1')} notables)")
        engine.close()
    print(f"end: {_load()}, simulated from {START - warmup(args):%Y-%m-%d}")


def _count(db: DetectDB, where: str) -> int:
    return int(db.rows(f"SELECT count(*) FROM alerts WHERE {where}")[0][0])  # noqa: S608


if __name__ == "__main__":
    main()
