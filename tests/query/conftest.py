"""One event store per test module, loaded with the fixed data set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubsight.store.embedded import EmbeddedStore

from .dataset import events


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """The data set in a fresh embedded store (chdb allows one data directory per process)."""
    opened = EmbeddedStore(tmp_path_factory.mktemp("query-store"))
    opened.write(events())
    try:
        yield opened
    finally:
        opened.close()
