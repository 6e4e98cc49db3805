"""Raw-record paths for Log Search completion: sampled per scope, cached, and queryable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from hubsight.parsing.event import Event, LogSet
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.web.api import create_app
from hubsight.web.raw_paths import RawPathCache, record_paths

from tests.query.dataset import BASE, WINDOW, events


@pytest.fixture
def store(data_dir: Path) -> Iterator[EmbeddedStore]:
    opened = EmbeddedStore(data_dir)
    try:
        opened.write(events())
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(data_dir: Path, store: EmbeddedStore) -> Iterator[TestClient]:
    with TestClient(create_app(Service(data_dir, store, Catalog(data_dir)))) as test_client:
        yield test_client


def _unparsed(raw: bytes, offset: int) -> Event:
    # Bytes that are not JSON are kept as a base64 string: no paths in them.
    return Event(
        raw_base64=raw.startswith(b'"') or None,
        timestamp=BASE + timedelta(days=1),
        log_set=LogSet.UNPARSED_DATA,
        log_name="relay",
        raw=msgspec.Raw(raw),
        source_topic="t",
        source_partition=0,
        source_offset=offset,
        record_index=0,
    )


def test_record_paths_name_scalars_the_way_leql_reads_them() -> None:
    record = {
        "time": "2026-03-01T00:00:00Z",
        "properties": {
            "status": {"errorCode": 50126, "failureReason": None},
            "mfaDetail": {"authMethod": "SMS", "verified": True},
            "conditionalAccessPolicies": [{"id": "x"}],
            "weird key": 1,
            "dotted.key": 2,
        },
    }
    assert sorted(record_paths(record)) == [
        "properties.mfaDetail.authMethod",
        "properties.mfaDetail.verified",
        "properties.status.errorCode",
        "source_json.time",
    ]
    assert list(record_paths(["not", "a", "record"])) == []


def test_paths_of_the_chosen_log_sets_most_frequent_first(
    client: TestClient, store: EmbeddedStore
) -> None:
    store.write([_unparsed(b'{"odd": {"onlyHere": 1}}', 1), _unparsed(b'"AGdhcmJhZ2U="', 2)])
    answer = client.get("/api/v1/raw-paths", params={"log_set": "Ingress Authentication"})
    assert answer.status_code == 200
    body = answer.json()
    paths = body["paths"]
    # The newest day of sign-ins (i = 27..57): 21 events, three (i = 30, 40, 50) with a device.
    assert body["sampled_events"] == 21
    assert paths[:2] == ["properties.appDisplayName", "properties.attempt"]
    assert paths[-2:] == [
        "properties.deviceDetail.isCompliant",
        "properties.deviceDetail.operatingSystem",
    ]
    assert {"properties.status.errorCode", "source_json.category"} <= set(paths)
    assert "odd.onlyHere" not in paths
    unparsed = client.get("/api/v1/raw-paths", params={"log_set": "Unparsed Data"}).json()
    assert unparsed == {"paths": ["odd.onlyHere"], "sampled_events": 2}
    by_name = client.get("/api/v1/raw-paths", params={"log_name": "relay"}).json()
    assert by_name["paths"] == ["odd.onlyHere"]


def test_an_offered_path_finds_its_events(client: TestClient) -> None:
    paths = client.get("/api/v1/raw-paths", params={"log_set": "Ingress Authentication"}).json()
    assert "properties.deviceDetail.operatingSystem" in paths["paths"]
    query = 'where(properties.deviceDetail.operatingSystem = "Windows 11") groupby(log_name)'
    body = {"query": query, "from": WINDOW[0], "to": WINDOW[1]}
    result = client.post("/api/v1/search", json=body).json()
    assert result["rows"] == [["Azure AD Sign-in", 6]]


def test_paths_are_cached_per_scope(store: EmbeddedStore) -> None:
    cache = RawPathCache(ttl_s=3600)
    scope: tuple[list[str], list[str]] = (["Unparsed Data"], [])
    assert cache.paths(store, *scope) == ([], 0)
    store.write([_unparsed(b'{"late": {"arrival": "x"}}', 3)])
    assert cache.paths(store, *scope) == ([], 0)
    assert cache.paths(store, ["Unparsed Data", "Unparsed Data"], []) == ([], 0)
    assert RawPathCache(ttl_s=0).paths(store, *scope) == (["late.arrival"], 1)
