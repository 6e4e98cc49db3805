"""Fixtures shared by the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.web.api import create_app


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    """The API over an empty store and catalog, as the owner's socket serves it (no sign-in)."""
    store = EmbeddedStore(data_dir)
    try:
        service = Service(data_dir, store, Catalog(data_dir))
        with TestClient(create_app(service)) as test_client:
            yield test_client
    finally:
        store.close()
