"""Input that once gave a 500 or a dropped connection is a 4xx with the error-and-hint body;
input that once changed a query the console writes is quoted as a LEQL string."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from hubsight.detect.db import DetectDB
from hubsight.query import ast
from hubsight.query.params import render
from hubsight.query.parser import parse
from hubsight.service import Service
from hubsight.web.api import create_app
from hubsight.web.limits import MAX_BODY_BYTES

SEARCH = "/api/v1/search"
ODD = ["x'", "a\\b", "line\nbreak", "tab\tcr\r", 'q"uote', "\\'"]


@pytest.fixture
def client(service: Service, data_dir: Path) -> Iterator[TestClient]:
    app = create_app(service)
    db = DetectDB.in_dir(data_dir)
    app.state.detect_db = db
    try:
        yield TestClient(app, raise_server_exceptions=False)
    finally:
        db.close()


def _refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]
    assert "hint" in body or "problems" in body
    return body


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"query": "timeslice(99999999999999999999999h)", "last": "1h"}, "wider than"),
        ({"query": "where(timestamp > 9999999999999999999999)", "last": "1h"}, "is not a time"),
        ({"query": "where(x)", "last": "999999999999d"}, "before the year 1"),
        (
            {"query": "where(x)", "from": "99999999999999999999"},
            "cannot read the start time (from)",
        ),
    ],
)
def test_times_past_what_a_datetime_holds_are_400(
    client: TestClient, body: dict[str, str], says: str
) -> None:
    assert says in _refused(client.post(SEARCH, json=body), 400)["error"]


def test_widest_timeslice_and_longest_range_still_run(client: TestClient) -> None:
    wide = client.post(SEARCH, json={"query": "timeslice(36600d)", "last": "3650d"})
    assert wide.status_code == 200, wide.text
    assert "wider" in client.post(SEARCH, json={"query": "timeslice(36601d)"}).json()["error"]


def test_timeline_days_out_of_range_is_422(client: TestClient) -> None:
    _refused(client.get("/api/v1/users/x/timeline?days=1000000000000"), 422)
    _refused(client.get("/api/v1/users/x/timeline?days=0"), 422)
    assert client.get("/api/v1/users/x/timeline?days=3650").status_code == 200


@pytest.mark.parametrize("value", ODD)
def test_log_set_and_name_values_with_quotes_backslashes_newlines(
    client: TestClient, value: str
) -> None:
    paths = client.get("/api/v1/raw-paths", params={"log_set": value, "log_name": value})
    assert paths.json() == {"paths": [], "sampled_events": 0}
    body = {"query": "where(x)", "last": "1h", "log_sets": [value], "log_names": [value]}
    assert client.post(SEARCH, json=body).json()["events"] == []


def test_array_parameters_reach_the_store_unchanged(service: Service) -> None:
    rows = service.store.select("SELECT {a:Array(String)} AS a", {"a": render(ODD)})
    assert rows[0]["a"] == ODD


def test_a_deeply_nested_body_is_400(client: TestClient) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    headers = {"content-type": "application/json"}
    _refused(client.post(SEARCH, content=deep, headers=headers), 400)
    nested = _refused(client.post("/api/v1/event-sources", content=deep, headers=headers), 400)
    assert "nests too deeply" in nested["error"]


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    big = b'{"query": "' + b"x" * MAX_BODY_BYTES + b'"}'
    _refused(client.post(SEARCH, content=big, headers={"content-type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield big[:1000]
        yield big[1000:]

    streamed = client.post(SEARCH, content=chunks(), headers={"content-type": "application/json"})
    _refused(streamed, 413)
    just_under = {"query": "where(x)", "last": "1h", "log_names": ["x" * (MAX_BODY_BYTES - 100)]}
    assert client.post(SEARCH, json=just_under).status_code == 200


def test_a_user_name_with_a_quote_cannot_change_the_user_pages_queries(client: TestClient) -> None:
    name = 'x") OR user=* OR (user="'
    page = client.get(f"/users/{quote(name, safe='')}")
    assert page.status_code == 200
    queries = [html.unescape(q) for q in re.findall(r'data-query="([^"]*)"', page.text)]
    assert len(queries) >= 2
    for query in queries:
        where = parse(query).where
        assert isinstance(where, ast.Compare)  # one comparison, on this user
        assert isinstance(where.value, ast.Text)
        assert where.value.text == name.lower()  # the page shows the user in lower case


def test_a_user_whose_name_holds_a_slash_has_a_page(client: TestClient) -> None:
    # Its link quotes "/" as %2F, which the server receives decoded: the page was a 404.
    name = "contoso/svc-backup"
    page = client.get(f"/users/{quote(name, safe='')}")
    assert page.status_code == 200
    assert f"<h1>{name}</h1>" in page.text
    timeline = client.get(f"/api/v1/users/{quote(name, safe='')}/timeline")
    assert (timeline.status_code, timeline.json()["user"]) == (200, name)
