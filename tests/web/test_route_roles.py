"""Every route of the app declares who may call it, and is refused to everyone else; every call
of a route that changes something leaves its entry in the audit trail.

The walk reads the app's own route table, pages included, so a route added later is called too;
path parameters are filled with ``test`` (the old check let analysts change any path ending in
``/test``), and the accounts themselves have ``test`` in their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from hubsight.detect.db import DetectDB
from hubsight.errors import ConfigError
from hubsight.service import Service
from hubsight.sources.config import make_source
from hubsight.store.audit import AuditFilter, AuditLog
from hubsight.store.users import UserStore
from hubsight.web.api import check_routes, create_app
from hubsight.web.auditing import CHANGING, declared_audit
from hubsight.web.auth import ACCESS, ConsoleAuth, app_routes, declared_access, require_role

from tests.support import FAST_HASH

# The old check skipped paths ending in /test: a source, an account and a saved query named so.
NAME = "test"
# The readiness probe answers 503 by design here: no service loop runs in these tests.
NOT_READY = {("GET", "/health/ready")}


@pytest.fixture
def app(service: Service, data_dir: Path) -> Iterator[FastAPI]:
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("admin-test", "admin passphrase here", "admin")
    users.create(NAME, "analyst passphrase here", "analyst")
    service.catalog.add(
        make_source({"name": NAME, "profile": {"kind": "kafka", "bootstrap": "127.0.0.1:1"}})
    )
    built = create_app(service, auth=ConsoleAuth(users))
    db = DetectDB.in_dir(data_dir)
    built.state.detect_db = db
    try:
        yield built
    finally:
        db.close()


def _calls(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path with parameters filled, declared access) of every route."""
    return [(method, path, access) for method, path, access, _ in _audited_calls(app)]


def _audited_calls(app: FastAPI) -> list[tuple[str, str, str, str | None]]:
    """As ``_calls``, with the audit action a changing route declares (None for the others)."""
    calls: list[tuple[str, str, str, str | None]] = []
    for route in app_routes(app.routes):
        if isinstance(route, Mount):
            # Static files are the only mount: the scripts and styles of the login page.
            assert route.path == "/static", f"mount {route.path} declares no role"
            continue
        assert isinstance(route, APIRoute), f"{route} is not an API route and declares no role"
        declared = declared_access(route)
        assert len(declared) == 1, f"{route.path} declares {declared}"
        path = re.sub(r"\{[^}]+\}", NAME, route.path)
        methods = sorted(route.methods or ())
        actions = [a.action for a in declared_audit(route)]
        if CHANGING & set(methods):
            assert len(actions) == 1, f"{route.path} declares audit actions {actions}"
        action = actions[0] if actions else None
        calls += [(method, path, declared[0], action) for method in methods]
    return calls


def _check_trail(
    audit: AuditLog, seen: int, call: tuple[str, str, str, str | None], status: int, actor: str
) -> int:
    """Assert the call left exactly its entry (or none, when no one was known); the new count."""
    method, path, access, action = call
    entries = audit.entries(AuditFilter(limit=5))
    fresh = [e for e in entries if e.seq > seen]
    if action is None or access in ("owner", "public"):
        # Owner-only routes refuse a console caller before asking who it is; a public one (the
        # sign-in, without a name here) does not ask at all: test_audit signs in for real.
        assert fresh == [], (method, path, fresh)
        return seen
    assert len(fresh) == 1, (method, path, status)
    entry = fresh[0]
    assert (entry.action, entry.actor, entry.via) == (action, actor, "token"), (method, path)
    assert entry.address == "testclient"
    assert entry.details["status"] == status
    expected = "ok" if status < 400 else "denied" if status == 403 else "failed"
    assert entry.outcome == expected, (method, path)
    return entry.seq


def test_every_route_is_refused_to_callers_without_its_role(app: FastAPI) -> None:
    users: UserStore = app.state.auth.users
    audit: AuditLog = app.state.audit
    audited_calls = _audited_calls(app)
    calls = [(method, path, access) for method, path, access, _ in audited_calls]
    assert len(calls) > 40  # the walk sees the whole table
    assert set(ACCESS) == {access for *_, access in calls}
    client = TestClient(app, follow_redirects=False)
    analyst = {"Authorization": f"Bearer {users.issue_token(NAME, 'walk')}"}
    admin = {"Authorization": f"Bearer {users.issue_token('admin-test', 'walk')}"}
    for method, path, access in calls:
        anonymous = client.request(method, path)
        # No one is known: nothing is recorded (a sign-in without a name is not one).
        assert audit.entries() == [], (method, path)
        if access == "public":
            assert anonymous.status_code not in (303, 401, 403), (method, path)
        elif access == "owner":
            assert anonymous.status_code == 403, (method, path)
        elif path.startswith("/api/") or method != "GET" or access == "monitor":
            assert anonymous.status_code == 401, (method, path)
        else:
            assert anonymous.status_code == 303, (method, path)
            assert anonymous.headers["location"].startswith("/login?next="), path
    # Analysts before admins: an admin's DELETE of /api/v1/accounts/test removes the analyst.
    seen = 0
    for call in audited_calls:
        method, path, access, _ = call
        response = client.request(method, path, headers=analyst)
        seen = _check_trail(audit, seen, call, response.status_code, NAME)
        if access in ("admin", "owner"):
            assert response.status_code == 403, (method, path)
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)
        assert response.status_code < 500 or (method, path) in NOT_READY, (method, path)
    for call in audited_calls:
        method, path, access, _ = call
        response = client.request(method, path, headers=admin)
        seen = _check_trail(audit, seen, call, response.status_code, "admin-test")
        if access == "owner":
            assert response.status_code == 403, (method, path)
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)
        assert response.status_code < 500 or (method, path) in NOT_READY, (method, path)
    assert client.get("/static/console.css").status_code == 200


def test_analysts_cannot_change_what_is_named_test(app: FastAPI) -> None:
    users: UserStore = app.state.auth.users
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {users.issue_token(NAME, 'x')}"
    patch = {"profile": {"bootstrap": "attacker.example:9093"}}
    assert client.patch(f"/api/v1/event-sources/{NAME}", json=patch).status_code == 403
    assert client.delete(f"/api/v1/event-sources/{NAME}").status_code == 403
    assert client.delete("/api/v1/accounts/admin-test").status_code == 403
    body = {"kind": "syslog", "name": NAME, "host": "127.0.0.1"}
    assert client.put(f"/api/v1/notify/targets/{NAME}", json=body).status_code == 403
    assert client.post(f"/api/v1/event-sources/{NAME}/test").status_code == 200
    assert app.state.service.catalog.get(NAME).profile.bootstrap == "127.0.0.1:1"
    assert [a.name for a in users.accounts()] == ["admin-test", NAME]


def test_an_app_with_a_route_that_declares_no_role_is_refused(app: FastAPI) -> None:
    check_routes(app)

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(ConfigError, match=r"/api/v1/forgotten declares 0 roles"):
        check_routes(app)


def test_an_app_with_a_changing_route_that_is_not_audited_is_refused(app: FastAPI) -> None:
    @app.delete("/api/v1/unrecorded", dependencies=[require_role("admin")])
    def unrecorded() -> None:
        return None

    with pytest.raises(ConfigError, match=r"/api/v1/unrecorded changes something but declares 0"):
        check_routes(app)
