"""Console page benchmark: every page (and the searches its charts run) over a full store.

Usage: ``python bench/console.py [--size 1000000] [--runs 15]``

The store is filled as ``bench/search.py`` fills it (simulated, parsed events copied with fresh
positions), with the eight days ending now, so the pages' "last 24 h / 30 days" windows hold
the events. The simulated pool also goes through the shipped detection rules, which raise the
alerts and investigations the pages list. Each page is then fetched through the app (routing,
database reads, template rendering) warm, and its p50/p95 is printed; the issue's budget is
300 ms. Run it on an idle machine: figures taken beside other work are slower.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

import search as filler  # bench/search.py: the same pool and fill
from hubsight.detect.db import DetectDB
from hubsight.detect.runtime import EngineRequest, open_engine
from hubsight.parsing.event import LogSet
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.web.api import create_app

BUDGET_MS = 300.0


def pages(client: TestClient, store: EmbeddedStore) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(label, path, search body or None) of every page and of the searches pages run."""
    alert = client.get("/api/v1/alerts", params={"limit": 1}).json()
    inv = client.get("/api/v1/investigations", params={"limit": 1}).json()
    user = store.select(
        "SELECT user, count() AS n FROM events WHERE user != '' GROUP BY user "
        "ORDER BY n DESC LIMIT 1"
    )[0]["user"]
    ip = store.select(
        "SELECT source_ip, count() AS n FROM events WHERE source_ip != '' GROUP BY source_ip "
        "ORDER BY n DESC LIMIT 1"
    )[0]["source_ip"]
    resource = store.select("SELECT resource_id FROM events WHERE resource_id != '' LIMIT 1")[0][
        "resource_id"
    ]
    listed: list[tuple[str, str, dict[str, Any] | None]] = [
        ("dashboard", "/", None),
        ("data collection", "/sources", None),
        ("log search", "/search", None),
        ("investigations", "/investigations", None),
        ("alerts", "/alerts", None),
        ("users (all seen, 30 d)", "/users", None),
        ("user", f"/users/{user}", None),
        ("address", f"/addresses/{ip}", None),
        ("resource", f"/resources?id={resource}", None),
        ("settings", "/settings", None),
        ("404", "/no/such/page", None),
    ]
    if alert:
        listed.append(("alert (evidence summaries)", f"/alerts/{alert[0]['id']}", None))
    if inv:
        listed.append(("investigation (timeline)", f"/investigations/{inv[0]['id']}", None))
    zone = {"timezone": "UTC"}
    listed += [
        (
            "dashboard chart: authentications",
            "/api/v1/search",
            {
                "query": 'where(log_set="Ingress Authentication") groupby(result) timeslice(24)',
                "last": "24h",
            }
            | zone,
        ),
        (
            "log search: user's events",
            "/api/v1/search",
            {"query": f'where(user="{user}")', "last": "24h"} | zone,
        ),
        (
            "log search: histogram",
            "/api/v1/search",
            {"query": f'where(user="{user}") timeslice(60)', "last": "24h"} | zone,
        ),
    ]
    return listed


def main() -> None:
    """Fill a store, raise alerts on the pool, and time every page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pool-messages", type=int, default=1600)
    args = parser.parse_args()
    filler.END = datetime.now(UTC).replace(microsecond=0)
    pool = filler.pool_events(args.pool_messages)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        engine = open_engine(EngineRequest(data_dir=data_dir))
        raised = engine.process(pool)
        engine.close()
        store = EmbeddedStore(data_dir)
        catalog = Catalog(data_dir)
        for log_set in LogSet:
            catalog.set_retention(log_set.value, 3650)
        seconds = filler.fill(store, pool, args.size)
        stored = store.select("SELECT count() AS n FROM events")[0]["n"]
        print(f"store: {stored:,} events in {seconds:.0f} s; {len(raised)} alerts on the pool")
        app = create_app(Service(data_dir, store, catalog))
        app.state.detect_db = DetectDB.in_dir(data_dir)
        with TestClient(app) as client:
            print(f"{'page':38} {'p50 ms':>8} {'p95 ms':>8}  status")
            worst = 0.0
            for label, path, body in pages(client, store):

                def fetch(path: str = path, body: dict[str, Any] | None = body) -> int:
                    if body is None:
                        return client.get(path).status_code
                    return client.post(path, json=body).status_code

                status = fetch()
                p50, p95 = filler.timed(fetch, args.runs)
                worst = max(worst, p95)
                print(f"{label:38} {p50:8.1f} {p95:8.1f}  {status}")
        store.close()
    load = os.getloadavg()
    verdict = "within" if worst <= BUDGET_MS else "over"
    print(f"worst p95 {worst:.0f} ms: {verdict} the {BUDGET_MS:.0f} ms budget")
    print(f"load average while measured: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - started:.0f} s")
