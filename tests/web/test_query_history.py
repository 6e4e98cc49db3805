"""Log Search's query history: each account's own recent searches, kept on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hubsight.service import Service
from hubsight.store.users import HISTORY_KEPT, UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH


class Clock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def users(data_dir: Path) -> UserStore:
    store = UserStore(data_dir, hasher=FAST_HASH, clock=Clock())
    store.create("ana", "analyst passphrase one", "analyst")
    store.create("bob", "analyst passphrase two", "analyst")
    return store


def _as(service: Service, users: UserStore, name: str) -> TestClient:
    token = users.issue_token(name, "tests")
    client = TestClient(create_app(service, auth=ConsoleAuth(users)))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _run(client: TestClient, query: str, **scope: Any) -> int:
    body = {"query": query, "last": "1h", "history": True} | scope
    return client.post("/api/v1/search", json=body).status_code


def test_each_account_sees_its_own_searches_newest_first(
    service: Service, users: UserStore
) -> None:
    ana, bob = _as(service, users, "ana"), _as(service, users, "bob")
    assert _run(ana, "groupby(user)") == 200
    assert _run(ana, "where(result=FAILED)", log_sets=["Ingress Authentication"]) == 200
    assert _run(ana, "groupby(user)", last=None, **{"from": "2026-01-01", "to": "2026-01-02"})
    assert _run(ana, "groupby(user)") == 200  # again: moves up, is not listed twice
    assert _run(bob, "groupby(source_ip)") == 200
    # Not remembered: a search without ``history`` (the histogram's), one that does not parse.
    assert _run(ana, "timeslice(60)", history=False) == 200
    assert _run(ana, "where(") == 400
    mine = ana.get("/api/v1/query-history").json()
    assert [({k: v for k, v in h.items() if k != "ran_at"}) for h in mine] == [
        {"query": "groupby(user)", "last": "1h", "log_sets": [], "log_names": []},
        {"query": "groupby(user)", "from": "2026-01-01", "to": "2026-01-02", "log_sets": []}
        | {"log_names": []},
        {
            "query": "where(result=FAILED)",
            "last": "1h",
            "log_sets": ["Ingress Authentication"],
            "log_names": [],
        },
    ]
    assert mine[0]["ran_at"] > mine[1]["ran_at"] > mine[2]["ran_at"]
    assert [h["query"] for h in ana.get("/api/v1/query-history?limit=1").json()] == [
        "groupby(user)"
    ]
    assert [h["query"] for h in bob.get("/api/v1/query-history").json()] == ["groupby(source_ip)"]
    assert ana.delete("/api/v1/query-history").status_code == 204
    assert ana.get("/api/v1/query-history").json() == []
    assert len(bob.get("/api/v1/query-history").json()) == 1


def test_a_bad_limit_is_refused_with_its_problem(service: Service, users: UserStore) -> None:
    ana = _as(service, users, "ana")
    for limit in (0, HISTORY_KEPT + 1, "x"):
        response = ana.get(f"/api/v1/query-history?limit={limit}")
        assert response.status_code == 422
        assert response.json()["problems"][0]["loc"] == ["query", "limit"]


def test_only_the_latest_searches_are_kept_and_leave_with_their_account(
    users: UserStore,
) -> None:
    for n in range(HISTORY_KEPT + 2):
        users.remember_search("ana", {"query": f"q{n}"})
    kept = [h["query"] for h in users.search_history("ana")]
    assert kept == [f"q{n}" for n in range(HISTORY_KEPT + 1, 1, -1)]
    users.remember_search("bob", {"query": "mine"})
    users.delete("ana")
    assert users.search_history("ana") == []
    assert [h["query"] for h in users.search_history("bob")] == ["mine"]


def test_the_owners_socket_keeps_no_history(client: TestClient) -> None:
    assert _run(client, "groupby(user)") == 200
    assert client.get("/api/v1/query-history").json() == []
