"""The service's once-a-minute jobs: one that fails neither stops collection nor the others."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest

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
