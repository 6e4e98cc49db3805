"""A part ClickHouse sets aside as damaged is reported with its events and days, never silently.

The parts are real: written by the embedded store, then cut short or moved while it is closed,
as a power cut or a full disk during a merge leaves them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from hubsight.errors import StoreError
from hubsight.parsing.event import Event, LogSet
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.damage import DamagedPart, damaged_parts, reattach
from hubsight.store.embedded import EmbeddedStore
from hubsight.web.api import create_app

# Three batches, three parts: 700 events over Jan 1-3, 500 from the first millisecond of Jan 10
# to the last of Jan 12, and 300 on Feb 1.
_FIRST = [datetime(2026, 1, 1 + i % 3, 12, tzinfo=UTC) for i in range(700)]
_SECOND = [
    datetime(2026, 1, 10, tzinfo=UTC) + (timedelta(days=3) - timedelta(milliseconds=1)) * i / 499
    for i in range(500)
]
_THIRD = [datetime(2026, 2, 1, 8, tzinfo=UTC)] * 300


def _events(times: list[datetime], offset: int) -> list[Event]:
    return [
        Event(
            timestamp=moment,
            log_set=LogSet.UNPARSED_DATA,
            log_name="azure",
            # A JSON string (the record's base64), as the parts' sizes were measured with.
            raw=msgspec.Raw(
                msgspec.json.encode(
                    f'{{"i": {offset + i}, "pad": "{os.urandom(40).hex()}"}}'.encode()
                )
            ),
            source_topic="t",
            source_partition=0,
            source_offset=offset + i,
        )
        for i, moment in enumerate(times)
    ]


def _count(store: EmbeddedStore) -> int:
    return int(store.select("SELECT count() AS n FROM events")[0]["n"])


@pytest.fixture
def parts(data_dir: Path) -> list[Path]:
    """The three batches stored, the store closed; the events table's parts, oldest first."""
    store = EmbeddedStore(data_dir)
    try:
        store.write(_events(_FIRST, 0))
        store.write(_events(_SECOND, 700))
        store.write(_events(_THIRD, 1200))
        rows = store.select(
            "SELECT path FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'events' AND active ORDER BY min_block_number"
        )
        # Negative: a sound store reports nothing.
        assert damaged_parts(store) == []
    finally:
        store.close()
    assert len(rows) == 3
    return [Path(row["path"]) for row in rows]


def _cut_short(part: Path) -> None:
    data = part / "data.bin"
    os.truncate(data, data.stat().st_size // 2)


def test_parts_cut_short_are_reported_with_their_events_and_days(
    data_dir: Path, parts: list[Path]
) -> None:
    _cut_short(parts[1])
    _cut_short(parts[2])
    store = EmbeddedStore(data_dir)
    try:
        assert _count(store) == 700
        second, third = damaged_parts(store)
    finally:
        store.close()
    name = f"broken-on-start_{parts[1].name}"
    assert second == DamagedPart(
        table="events",
        name=name,
        reason="broken-on-start",
        path=str(parts[1].parent / "detached" / name),
        events=500,
        first_day=date(2026, 1, 10),
        last_day=date(2026, 1, 12),
    )
    assert second.summary() == (
        f"500 events of 2026-01-10 to 2026-01-12 set aside as damaged (broken-on-start): "
        f"{second.path}"
    )
    assert DamagedPart.from_json(second.as_json()) == second
    # A part of one day names that day once.
    assert (third.events, third.first_day, third.last_day) == (
        300,
        date(2026, 2, 1),
        date(2026, 2, 1),
    )
    assert third.summary().startswith("300 events of 2026-02-01 set aside")


def test_a_whole_part_is_reattached_and_a_damaged_one_stays_aside(
    data_dir: Path, parts: list[Path]
) -> None:
    # Set aside with its files whole (as after a passing read error), and one cut short.
    whole = parts[0].parent / "detached" / f"broken-on-start_{parts[0].name}"
    os.rename(parts[0], whole)
    _cut_short(parts[1])
    store = EmbeddedStore(data_dir)
    try:
        assert _count(store) == 300
        first, second = sorted(damaged_parts(store), key=lambda p: p.name)
        assert first.path == str(whole)
        reattach(store, first)
        assert _count(store) == 1000
        with pytest.raises(StoreError, match=r"data\.bin has unexpected size"):
            reattach(store, second)
        # Still set aside, under its own name, for a later attempt or a restore.
        assert damaged_parts(store) == [second]
        # A part listed with a path not on this machine (a ClickHouse server's) is left alone.
        elsewhere = dataclasses.replace(second, path=str(data_dir / "on-the-server" / second.name))
        with pytest.raises(StoreError, match="is not on this machine"):
            reattach(store, elsewhere)
        assert _count(store) == 1000
    finally:
        store.close()


def test_the_service_logs_saves_and_shows_damaged_parts(
    data_dir: Path, parts: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    _cut_short(parts[1])
    store = EmbeddedStore(data_dir)
    try:
        service = Service(data_dir, store, Catalog(data_dir))
        with caplog.at_level(logging.WARNING, logger="hubsight.service"):
            service.check_store()
        (part,) = service.damaged_parts
        assert f"event store: {part.summary()}; `hubsight doctor`" in caplog.text
        assert Catalog(data_dir).load_damaged_parts() == [part.as_json()]
        with TestClient(create_app(service)) as client:
            page = client.get("/sources").text
            assert client.get("/api/v1/status").json()["damaged_parts"] == [part.as_json()]
        assert "500 events of 2026-01-10 to 2026-01-12 set aside as damaged" in page
        assert "hubsight doctor" in page
    finally:
        store.close()
    # Negative: a sound store clears what an earlier start saved.
    store = EmbeddedStore(data_dir)
    try:
        reattach_free = Service(data_dir, store, Catalog(data_dir))
        os.rename(part.path, Path(part.path).with_name("kept-by-hand"))
        reattach_free.check_store()
        assert reattach_free.damaged_parts == []
        assert Catalog(data_dir).load_damaged_parts() == []
        with TestClient(create_app(reattach_free)) as client:
            assert "set aside as damaged" not in client.get("/sources").text
    finally:
        store.close()
