"""The service's once-a-minute jobs: one that fails neither stops collection nor the others."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import pytest

from hubsight.mapped import ENGINE_LIBRARY, releasable
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore


def test_a_failing_job_does_not_skip_the_jobs_after_it(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def detection_tick(_now: datetime) -> None:
        ran.append("detection")
        raise RuntimeError("the detection database is locked")

    def sweep(now: datetime) -> None:
        ran.append(f"sweep at {now.tzinfo}")

    store = EmbeddedStore(data_dir)
    try:
        service = Service(data_dir, store, Catalog(data_dir), on_tick=(detection_tick, sweep))
        with caplog.at_level(logging.ERROR, logger="hubsight.service"):
            service._tick()
        service._tick()
    finally:
        store.close()
    assert ran == ["detection", "sweep at UTC"] * 2
    assert "the periodic job " in caplog.text
    assert "detection_tick failed" in caplog.text
    assert "the detection database is locked" in caplog.text


def _engine_library_kb() -> int:
    smaps = Path("/proc/self/smaps").read_text()
    return sum(rss for _start, _length, rss in releasable(smaps, ENGINE_LIBRARY)) // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's smaps only")
def test_each_tick_releases_the_engine_librarys_pages(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        service = Service(data_dir, store, Catalog(data_dir))
        store.select("SELECT count() AS n FROM events")
        before = _engine_library_kb()
        # Opening the store and a query touched tens of MB of the engine's code.
        assert before > 10 * 1024
        service._tick()
        # The engine's own threads may touch a few pages again meanwhile.
        assert _engine_library_kb() < before // 4
    finally:
        store.close()
