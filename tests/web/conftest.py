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
def service(data_dir: Path) -> Iterator[Service]:
    """A service over an empty store and catalog."""
    store = EmbeddedStore(data_dir)
    try:
        yield Service(data_dir, store, Catalog(data_dir))
    finally:
        store.close()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    """The API as the owner's socket serves it (no sign-in)."""
    with TestClient(create_app(service)) as test_client:
        yield test_client
