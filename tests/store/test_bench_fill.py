"""``bench/search.py``'s fill leaves the store it fills as it found it: merges running.

Merges left stopped held every later mutation of the events table (a retention change waited
for ever) in the benchmarks that go on with the filled store (``bench/console.py``,
``bench/catchup.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hubsight.detect.base import example_event
from hubsight.errors import StoreError
from hubsight.parsing.event import LogSet
from hubsight.store.embedded import EmbeddedStore

from bench.search import _STAGE, fill


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """An empty store of its own (the fill copies into its events table)."""
    opened = EmbeddedStore(tmp_path / "store")
    try:
        yield opened
    finally:
        opened.close()


def _parts(store: EmbeddedStore) -> int:
    return int(
        store.select("SELECT count() AS n FROM system.parts WHERE table = 'events' AND active")[0][
            "n"
        ]
    )


def _merges_run(store: EmbeddedStore) -> None:
    """Merge the events table into one part, which ClickHouse refuses while merges are stopped
    ("Cancelled merging parts")."""
    store.write([example_event(LogSet.INGRESS_AUTHENTICATION, 0, offset=1)])
    assert _parts(store) > 1
    store.execute("OPTIMIZE TABLE events FINAL")
    assert _parts(store) == 1


def test_a_filled_store_merges_again(store: EmbeddedStore) -> None:
    # A pool of a few hundred events, copied until the store holds 1,200 (the last in part).
    fill(store, 20, 1_200)
    assert store.select("SELECT count() AS n FROM events")[0]["n"] == 1_200
    _merges_run(store)


def test_a_fill_that_fails_starts_merges_again(store: EmbeddedStore) -> None:
    # Left by a fill that was killed: the next one cannot make its stage table.
    store.execute(f"CREATE TABLE {_STAGE} AS events")
    with pytest.raises(StoreError, match=_STAGE):
        fill(store, 20, 1_200)
    _merges_run(store)
