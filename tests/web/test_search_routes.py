"""The Log Search REST routes over the fixed data set."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

from hubsight.cli.run_cmd import _start_api
from hubsight.detect.runtime import Detection
from hubsight.query.saved import SavedScope, save
from hubsight.service import SOCKET_FILE, Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import Account, Role, UserStore
from hubsight.web.auth import ConsoleAuth
from hubsight.web.search_routes import router

from tests.query.dataset import WINDOW, events, groups, newest
from tests.support import FAST_HASH, wait_until


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """A store holding the data set."""
    opened = EmbeddedStore(tmp_path_factory.mktemp("search-web"))
    opened.write(events())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def client(store: EmbeddedStore) -> Iterator[TestClient]:
    """An app with only the search router, without sign-in (as on the owner's socket)."""
    app = FastAPI()
    app.state.store = store
    app.include_router(router)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    """The console's accounts."""
    return UserStore(tmp_path, hasher=FAST_HASH)


@pytest.fixture
def signed_in(store: EmbeddedStore, users: UserStore) -> Iterator[dict[str, TestClient]]:
    """The search router with sign-in over the same store: a client per account, by name."""
    app = FastAPI()
    app.state.store = store
    app.state.auth = ConsoleAuth(users)
    app.include_router(router)
    clients = {}
    accounts: list[tuple[str, Role]] = [("alice", "analyst"), ("bob", "analyst"), ("root", "admin")]
    for name, role in accounts:
        clients[name] = _client_of(app, users, name, role)
    yield clients
    for query in clients["root"].get("/api/v1/saved-queries").json():
        clients["root"].delete(f"/api/v1/saved-queries/{query['id']}")


def _client_of(app: ASGIApp, users: UserStore, name: str, role: Role) -> TestClient:
    users.create(name, "a long passphrase", role)
    token = users.issue_token(name, "test")
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def _body(query: str, **extra: Any) -> dict[str, Any]:
    return {"query": query, "from": WINDOW[0], "to": WINDOW[1], **extra}


def test_quick_search_answers_synchronously(client: TestClient) -> None:
    response = client.post("/api/v1/search", json=_body("groupby(result)"))
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["kind"]) == ("done", "table")
    assert body["rows"] == groups(lambda r: r.result)
    polled = client.get(f"/api/v1/search/{body['id']}").json()
    assert polled["rows"] == body["rows"]


def test_slow_search_returns_an_id_to_poll(client: TestClient) -> None:
    response = client.post("/api/v1/search", json=_body("corp", wait_ms=0))
    job = response.json()["id"]
    assert response.status_code in {200, 202}
    for _ in range(100):
        polled = client.get(f"/api/v1/search/{job}")
        if polled.status_code == 200:
            break
        time.sleep(0.02)
    assert [e["source_offset"] for e in polled.json()["events"]] == newest(
        lambda r: "corp" in r.raw_text
    )


def test_unknown_key_answers_from_the_raw_record_with_a_warning(client: TestClient) -> None:
    response = client.post("/api/v1/search", json=_body("where(usr=x) groupby(riskLevel)"))
    assert response.status_code == 200
    body = response.json()
    assert body["rows"] == []
    assert body["warnings"] == [
        {
            "message": "'usr' is not a hubsight key: read from the raw record's 'usr' or "
            "'properties.usr' (any case)",
            "hint": 'did you mean user? a strict search (--strict, or "strict": true in the API) '
            "refuses unknown keys",
            "line": 1,
            "column": 7,
        },
        {
            "message": "'riskLevel' is not a hubsight key: read from the raw record's "
            "'riskLevel' or 'properties.riskLevel' (any case)",
            "hint": 'did you mean risk_level? a strict search (--strict, or "strict": true in the '
            "API) refuses unknown keys",
            "line": 1,
            "column": 22,
        },
    ]
    known = client.post("/api/v1/search", json=_body("where(user=x)")).json()
    assert known["warnings"] == []


def test_query_error_is_400_with_position(client: TestClient) -> None:
    response = client.post("/api/v1/search", json=_body("where(usr=x)", strict=True))
    assert response.status_code == 400
    assert response.json() == {
        "error": "unknown key 'usr'",
        "hint": "did you mean user? a path into the raw record is written source_json.<path>",
        "line": 1,
        "column": 7,
        "excerpt": "where(usr=x)\n      ^",
    }


def test_unknown_search_id_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/search/nope").status_code == 404


def test_paging_with_the_cursor(client: TestClient) -> None:
    first = client.post("/api/v1/search", json=_body("where(user)", limit=20)).json()
    second = client.post(
        "/api/v1/search", json=_body("where(user)", limit=20, cursor=first["next_cursor"])
    ).json()
    ids = [e["source_offset"] for e in first["events"] + second["events"]]
    assert ids == newest(lambda r: r.user != "", limit=40)


def test_export_streams_csv(client: TestClient) -> None:
    response = client.post("/api/v1/search/export?format=csv", json=_body("alice"))
    lines = response.text.splitlines()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert len(lines) == 1 + len(newest(lambda r: "alice" in r.raw_text))


def test_export_of_a_bad_query_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/search/export?format=json", json=_body("where(a=)"))
    assert response.status_code == 400
    assert response.json()["column"] == 9


def test_event_context(client: TestClient) -> None:
    event = client.post("/api/v1/search", json=_body("where(properties.attempt = 30)")).json()
    around = client.get(f"/api/v1/events/{event['events'][0]['id']}/context?before=1&after=1")
    body = around.json()
    assert around.status_code == 200
    assert body["event"]["source_offset"] == 30
    assert (len(body["before"]), len(body["after"])) == (1, 1)


def test_saved_query_crud(client: TestClient) -> None:
    created = client.post(
        "/api/v1/saved-queries",
        json={"name": "brute force", "query": "where(result=FAILED_BAD_PASSWORD) groupby(user)",
              "log_sets": ["Ingress Authentication"], "last": "24h"},
    )  # fmt: skip
    saved = created.json()
    assert created.status_code == 201
    assert client.get(f"/api/v1/saved-queries/{saved['id']}").json() == saved
    updated = client.put(
        f"/api/v1/saved-queries/{saved['id']}", json={"name": "bf", "query": "alice"}
    ).json()
    assert (updated["name"], updated["query"], updated["log_sets"]) == ("bf", "alice", [])
    assert [s["name"] for s in client.get("/api/v1/saved-queries").json()] == ["bf"]
    assert client.delete(f"/api/v1/saved-queries/{saved['id']}").status_code == 204
    assert client.get(f"/api/v1/saved-queries/{saved['id']}").status_code == 404
    bad = client.post("/api/v1/saved-queries", json={"name": "x", "query": "where(a=)"})
    assert (bad.status_code, json.loads(bad.text)["line"]) == (400, 1)


def _ids(client: TestClient) -> list[str]:
    return [q["id"] for q in client.get("/api/v1/saved-queries").json()]


def test_only_the_owner_or_an_admin_changes_a_saved_query(
    signed_in: dict[str, TestClient],
) -> None:
    alice, bob, root = signed_in["alice"], signed_in["bob"], signed_in["root"]
    mine = alice.post("/api/v1/saved-queries", json={"name": "mine", "query": "corp"}).json()
    url = f"/api/v1/saved-queries/{mine['id']}"
    assert (mine["owner"], mine["shared"], mine["can_change"]) == ("alice", False, True)
    # Not shared: another analyst neither sees it nor reaches it by its id.
    assert _ids(bob) == []
    assert bob.get(url).status_code == 404
    assert bob.delete(url).status_code == 404
    assert _ids(root) == [mine["id"]]
    # Shared read-only: others see and run it, never change or delete it.
    shared = alice.put(url, json={"name": "mine", "query": "corp", "shared": True}).json()
    assert (shared["shared"], shared["owner"]) == (True, "alice")
    seen = bob.get(url).json()
    assert (seen["query"], seen["can_change"]) == ("corp", False)
    for refused in (bob.put(url, json={"name": "x", "query": "alice"}), bob.delete(url)):
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "the saved query 'mine' belongs to 'alice': you may run it, not change it",
            "hint": "save a copy under another name, or ask its owner or an admin",
        }
    assert alice.get(url).json()["query"] == "corp"
    # An edit that leaves out "shared" keeps it; the owner may unshare.
    kept = alice.put(url, json={"name": "mine", "query": "alice"}).json()
    assert kept["shared"] is True
    unshared = alice.put(url, json={"name": "mine", "query": "alice", "shared": False})
    assert unshared.json()["shared"] is False
    assert _ids(bob) == []
    # Admins change and delete anyone's; the owner stays who saved it.
    renamed = root.put(url, json={"name": "renamed", "query": "corp"})
    assert (renamed.status_code, renamed.json()["owner"]) == (200, "alice")
    assert root.delete(url).status_code == 204
    assert _ids(alice) == []


def test_saved_queries_of_a_deleted_account_stay_for_an_admin_to_reassign_or_delete(
    signed_in: dict[str, TestClient], users: UserStore
) -> None:
    bob, root, alice = signed_in["bob"], signed_in["root"], signed_in["alice"]
    saved = "/api/v1/saved-queries"
    private = bob.post(saved, json={"name": "bob private", "query": "corp"}).json()
    shared = bob.post(saved, json={"name": "bob shared", "query": "corp", "shared": True}).json()
    assert private["owner_deleted"] is False
    users.delete("bob")
    # Admins still see both, marked; others run the shared one only, never change it.
    listed = {q["name"]: q for q in root.get(saved).json()}
    assert [(q["owner"], q["owner_deleted"], q["can_change"]) for q in listed.values()] == [
        ("bob", True, True),
        ("bob", True, True),
    ]
    assert [(q["name"], q["can_change"]) for q in alice.get(saved).json()] == [
        ("bob shared", False)
    ]
    # A new account named bob inherits nothing: the shared one is read-only to it.
    new_bob = _client_of(bob.app, users, "bob", "analyst")
    assert [(q["name"], q["can_change"]) for q in new_bob.get(saved).json()] == [
        ("bob shared", False)
    ]
    assert new_bob.get(f"{saved}/{private['id']}").status_code == 404
    assert new_bob.delete(f"{saved}/{shared['id']}").status_code == 403
    # No one edits it before it has an owner again; only an admin gives one, an existing account.
    url = f"{saved}/{private['id']}"
    edit = {"name": "bob private", "query": "corp"}
    refused = root.put(url, json=edit)
    assert refused.status_code == 400
    assert "belongs to 'bob', whose account was deleted" in refused.json()["error"]
    assert refused.json()["hint"].startswith('give it an owner ("owner": an account name)')
    nobody = root.put(url, json=edit | {"owner": "nobody"})
    assert (nobody.status_code, nobody.json()["error"]) == (
        400,
        "no account named 'nobody' to own the saved query",
    )
    taken = alice.put(f"{saved}/{shared['id']}", json=edit | {"owner": "alice"})
    assert taken.status_code == 403
    moved = root.put(url, json=edit | {"owner": "alice"}).json()
    assert (moved["owner"], moved["owner_deleted"]) == ("alice", False)
    assert [(q["name"], q["can_change"]) for q in alice.get(saved).json()] == [
        ("bob private", True),
        ("bob shared", False),
    ]
    # Given to the new bob on purpose, it is the new bob's; or an admin deletes it.
    give = {"name": "bob shared", "query": "corp", "owner": "bob"}
    given = root.put(f"{saved}/{shared['id']}", json=give).json()
    assert (given["owner"], given["owner_deleted"]) == ("bob", False)
    assert new_bob.get(f"{saved}/{shared['id']}").json()["can_change"] is True
    assert root.delete(url).status_code == 204
    assert [q["id"] for q in root.get(saved).json()] == [shared["id"]]


def test_the_owners_socket_knows_saved_queries_owners_without_hashing_or_reopening(
    store: EmbeddedStore, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = UserStore(data_dir, hasher=FAST_HASH)
    for name in ("alice", "bob"):
        setup.create(name, "a long passphrase", "analyst")
    bob = Account("bob", "analyst")
    orphan = save(store, bob, name="bob's", query="corp", scope=SavedScope())
    setup.delete("bob")

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a request that checks no password hashed one, or reopened the store")

    # Each request opened the accounts' store: a decoy password hash and a write lock apiece.
    monkeypatch.setattr(PasswordHasher, "hash", refuse)
    monkeypatch.setattr(PasswordHasher, "verify", refuse)
    users = UserStore(data_dir)
    monkeypatch.setattr(UserStore, "__init__", refuse)
    detection = Detection.open(data_dir)
    servers = _start_api(Service(data_dir, store, Catalog(data_dir)), detection, users, None)
    url = f"/api/v1/saved-queries/{orphan.id}"
    edit = {"name": "bob's", "query": "corp"}
    try:
        wait_until(lambda: all(s.started for s in servers), 10, "the owner's socket")
        local = httpx.HTTPTransport(uds=str(data_dir / SOCKET_FILE))
        with httpx.Client(transport=local, base_url="http://hubsight") as owner:
            listed = owner.get("/api/v1/saved-queries").json()
            assert [(q["owner"], q["owner_deleted"]) for q in listed] == [("bob", True)]
            assert owner.get(url).json()["owner_deleted"] is True
            nobody = owner.put(url, json=edit | {"owner": "nobody"})
            assert (nobody.status_code, nobody.json()["error"]) == (
                400,
                "no account named 'nobody' to own the saved query",
            )
            given = owner.put(url, json=edit | {"owner": "alice"}).json()
            assert (given["owner"], given["owner_deleted"]) == ("alice", False)
            assert owner.delete(url).status_code == 204
    finally:
        for server in servers:
            server.should_exit = True
        wait_until(lambda: _refused(data_dir / SOCKET_FILE), 10, "the socket to close")
        detection.close()


def _refused(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return True
    return False
