"""The audit trail through the console and the API: sign-ins with their address, changes with
what changed and never a secret, triage, exports, searches by token; admins alone read it.

(``test_route_roles`` walks every changing route and checks each leaves its entry;
``tests/store/test_audit_chain`` tampers with the file.)
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.cli.run_cmd import TRUSTED_PROXIES_ENV, _tcp_config
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.service import Service
from hubsight.store.audit import AuditFilter, AuditLog, Entry, cli_actor
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auditing import ACTOR_HEADER
from hubsight.web.auth import ConsoleAuth, LoginLimiter

from tests.support import FAST_HASH, PLANTED, PLANTED_KEY, PLANTED_PASSWORD, connection_string

ADMIN_PW = "correct horse battery"
ANALYST_PW = "analyst passphrase here"
PROXY, CLIENT = "10.0.0.5", "203.0.113.9"


@pytest.fixture
def app(service: Service, data_dir: Path) -> Iterator[FastAPI]:
    """The console with an admin, an analyst and one alert in its investigation."""
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("root", ADMIN_PW, "admin")
    users.create("ana", ANALYST_PW, "analyst")
    db = DetectDB.in_dir(data_dir)
    engine = DetectionEngine(db, [build_rule(BruteForceSuccess, {})], options=EngineOptions())
    assert engine.process(next(e for e in BruteForceSuccess.examples() if e.fires).events)
    built = create_app(service, auth=ConsoleAuth(users, limiter=LoginLimiter(attempts=3)))
    built.state.detect_db = db
    try:
        yield built
    finally:
        engine.close()


def _token(app: FastAPI, name: str) -> dict[str, str]:
    users: UserStore = app.state.auth.users
    return {"Authorization": f"Bearer {users.issue_token(name, 'audit test')}"}


def _trail(app: FastAPI, **flt: Any) -> list[Entry]:
    audit: AuditLog = app.state.audit
    return audit.entries(AuditFilter(**flt))


def _sign_in(client: TestClient, name: str, password: str) -> int:
    form = {"name": name, "password": password, "next": "/"}
    return client.post("/login", data=form, headers={"X-Forwarded-For": CLIENT}).status_code


def test_sign_ins_and_sign_outs_are_recorded_with_the_address_behind_a_proxy(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRUSTED_PROXIES_ENV, PROXY)
    # The app as `hubsight run` serves it: uvicorn believes X-Forwarded-For from the proxy only.
    served = _tcp_config(app, "127.0.0.1", 0).loaded_app
    client = TestClient(served, client=(PROXY, 40000), follow_redirects=False)
    assert _sign_in(client, "root", "wrong password here") == 401
    assert _sign_in(client, "nobody", "wrong password here") == 401
    assert _sign_in(client, "root", ADMIN_PW) == 303
    page = client.get("/settings")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    out = {"X-CSRF-Token": csrf.group(1), "X-Forwarded-For": CLIENT}
    assert client.post("/logout", headers=out).status_code == 303
    # The third failure in the window is refused by the limit: not one entry per attempt.
    assert _sign_in(client, "nobody", "wrong password here") == 401
    assert _sign_in(client, "nobody", "wrong password here") == 429
    direct = TestClient(served, client=("198.51.100.4", 40000), follow_redirects=False)
    assert _sign_in(direct, "ana", "wrong password here") == 401
    found = [(e.action, e.actor, e.outcome, e.address, e.via) for e in reversed(_trail(app))]
    assert found == [
        ("sign-in", "root", "failed", CLIENT, "session"),
        ("sign-in", "nobody", "failed", CLIENT, "session"),
        ("sign-in", "root", "ok", CLIENT, "session"),
        ("sign-out", "root", "ok", CLIENT, "session"),
        ("sign-in", "nobody", "failed", CLIENT, "session"),
        # Not from the trusted proxy: its forged header is not believed.
        ("sign-in", "ana", "failed", "198.51.100.4", "session"),
    ]


def test_only_admins_read_the_trail_filtered_and_paged(app: FastAPI) -> None:
    client = TestClient(app)
    admin, analyst = _token(app, "root"), _token(app, "ana")
    for n in range(3):
        body = {"name": f"q{n}", "query": "where(user=x)"}
        assert client.post("/api/v1/saved-queries", json=body, headers=analyst).status_code == 201
    assert client.put("/api/v1/retention/Unparsed Data", json={"days": 9}, headers=admin).is_success
    assert client.get("/api/v1/audit", headers=analyst).status_code == 403
    assert client.get("/settings/audit", headers=analyst).status_code == 403
    everything = client.get("/api/v1/audit", headers=admin).json()
    assert [e["action"] for e in everything["entries"]] == [
        "retention.update",
        *["saved-query.create"] * 3,
    ]
    assert everything["next_before"] is None
    assert everything["entries"][0]["details"]["changes"] == {"days": [14, 9]}
    first = client.get("/api/v1/audit?actor=ana&limit=2", headers=admin).json()
    assert [e["seq"] for e in first["entries"]] == [3, 2]
    rest = client.get(f"/api/v1/audit?actor=ana&before={first['next_before']}", headers=admin)
    assert [e["seq"] for e in rest.json()["entries"]] == [1]
    by_family = client.get("/api/v1/audit?action=retention&since=1h", headers=admin).json()
    assert [e["target"] for e in by_family["entries"]] == ["Unparsed Data"]
    assert client.get("/api/v1/audit?until=1h", headers=admin).json()["entries"] == []
    for since in ("yesterday-ish", "9999-12-31T23:00:00-14:00"):
        bad = client.get("/api/v1/audit", params={"since": since}, headers=admin)
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("since: cannot read")
    oldest = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T00:00:00Z"}
    assert len(client.get("/api/v1/audit", params=oldest, headers=admin).json()["entries"]) == 4
    assert 'href="/settings/audit"' in client.get("/settings", headers=admin).text
    assert 'href="/settings/audit"' not in client.get("/settings", headers=analyst).text
    page = client.get("/settings/audit?action=saved-query&actor=ana", headers=admin)
    assert page.status_code == 200
    assert page.text.count("saved-query.create") == 3
    assert "retention.update" not in page.text


def test_changes_are_recorded_as_diffs_and_never_a_secret(app: FastAPI, data_dir: Path) -> None:
    client = TestClient(app, headers=_token(app, "root"))
    host = "contoso-logs.servicebus.windows.net"
    source = {
        "name": "hub",
        "profile": {"kind": "eventhubs", "server": host, "connection_string": connection_string()},
    }
    assert client.post("/api/v1/event-sources", json=source).status_code == 201
    other_key = connection_string().replace("hubsight-listen", "other-policy")
    patch = {"topics": ["other"], "profile": {"connection_string": other_key}}
    assert client.patch("/api/v1/event-sources/hub", json=patch).status_code == 200
    hook = {"kind": "webhook", "name": "soar", "url": f"https://soar.example/{PLANTED_KEY}",
            "auth_header": f"Bearer {PLANTED_PASSWORD}"}  # fmt: skip
    assert client.post("/api/v1/notify/targets", json=hook).status_code == 201
    assert client.put("/api/v1/notify/targets/soar", json=hook | {"retries": 1}).is_success
    assert client.delete("/api/v1/notify/targets/soar").status_code == 204
    new = {"name": "eve", "password": PLANTED_PASSWORD, "role": "analyst"}
    assert client.post("/api/v1/accounts", json=new).status_code == 201
    issued = client.post("/api/v1/tokens", json={"label": "soar"}).json()
    token = issued["token"]
    assert client.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    assert client.put("/api/v1/rules/auth.brute_force/enabled", json={"enabled": False}).is_success
    assert client.delete("/api/v1/event-sources/hub").status_code == 204
    entries = {(e.action, e.target): e for e in _trail(app)}
    created = entries["source.create", "hub"].details["changes"]
    assert created["profile.server"] == [None, host]
    assert created["profile.connection_string"] == [None, "(set)"]
    assert entries["source.update", "hub"].details["changes"] == {
        "profile.connection_string": ["(set)", "(changed)"],
        "topics": [["insights-operational-logs"], ["other"]],
    }
    assert entries["target.update", "soar"].details["changes"] == {"retries": [3, 1]}
    assert entries["target.delete", "soar"].details["changes"]["kind"] == ["webhook", None]
    assert entries["account.create", "eve"].details["changes"] == {"role": [None, "analyst"]}
    assert entries["token.create", "root"].details["label"] == "soar"
    assert entries["token.revoke", issued["id"]].details == {
        "status": 204,
        "label": "soar",
        "account": "root",
    }
    assert entries["rule.update", "auth.brute_force"].details["changes"] == {
        "enabled": [True, False]
    }
    assert entries["source.delete", "hub"].details["changes"]["name"] == ["hub", None]
    # No planted secret, password or token anywhere: not in the files, not in the API.
    trail = client.get("/api/v1/audit?limit=1000").text
    for secret in (*PLANTED, token):
        assert secret not in trail
        for path in data_dir.glob("*.sqlite3*"):
            assert secret.encode() not in path.read_bytes(), path.name


def test_triage_records_what_changed(app: FastAPI) -> None:
    client = TestClient(app, headers=_token(app, "ana"))
    (inv,) = client.get("/api/v1/investigations").json()
    alert_id = client.get(f"/api/v1/investigations/{inv['id']}").json()["alerts"][0]["id"]
    change = {"status": "investigating", "assignee": "ana", "comment": "looking"}
    assert client.patch(f"/api/v1/alerts/{alert_id}", json=change).status_code == 200
    assert client.patch(f"/api/v1/investigations/{inv['id']}", json={"priority": "low"}).is_success
    close = {"alert_ids": [alert_id], "status": "closed", "disposition": "benign"}
    assert client.post("/api/v1/alerts/triage", json=close).status_code == 200
    bulk, investigation, single = _trail(app)
    assert (single.action, single.target, single.actor) == ("alert.triage", alert_id, "ana")
    assert single.details["changes"] == {
        "assignee": [None, "ana"],
        "status": ["open", "investigating"],
    }
    assert single.details["comment"] == "looking"
    assert investigation.action == "investigation.triage"
    assert investigation.details["changes"] == {"priority": ["high", "low"]}
    assert bulk.details["changes"] == {
        "disposition": [None, "benign"],
        "status": ["investigating", "closed"],
    }


def test_closing_and_reopening_an_investigation_records_the_alerts_it_moved(app: FastAPI) -> None:
    client = TestClient(app, headers=_token(app, "ana"))
    (inv,) = client.get("/api/v1/investigations").json()
    url = f"/api/v1/investigations/{inv['id']}"
    alert_id = client.get(url).json()["alerts"][0]["id"]
    closed = client.patch(url, json={"status": "closed", "disposition": "malicious"}).json()
    assert closed["alerts"][0]["status"] == "closed"
    reopened = client.patch(url, json={"status": "investigating"}).json()
    assert (reopened["alerts"][0]["status"], reopened["alerts"][0]["disposition"]) == ("open", None)
    reopening, closing = _trail(app, action="investigation")
    assert closing.details["alerts_closed"] == [alert_id]
    assert reopening.details["alerts_reopened"] == [alert_id]
    assert reopening.details["changes"] == {"status": ["closed", "investigating"]}


def test_searches_are_recorded_when_made_with_a_token_and_exports_always(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    assert _sign_in(client, "ana", ANALYST_PW) == 303
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/search").text)
    assert csrf is not None
    session = {"X-CSRF-Token": csrf.group(1)}
    body = {"query": "where(user=ana)", "last": "7d"}
    assert client.post("/api/v1/search", json=body, headers=session).status_code == 200
    exported = client.post("/api/v1/search/export?format=csv", json=body, headers=session)
    assert exported.status_code == 200
    tokened = TestClient(app, headers=_token(app, "ana"))
    assert tokened.post("/api/v1/search", json=body).status_code == 200
    actions = [(e.action, e.via) for e in _trail(app)]
    assert actions == [("search", "token"), ("export", "session"), ("sign-in", "session")]
    search, export = _trail(app, limit=2)
    assert search.details["query"] == "where(user=ana)"
    assert search.details["last"] == "7d"
    assert export.details["format"] == "csv"


def test_a_change_the_trail_cannot_record_is_answered_and_logged(
    app: FastAPI, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(app, headers=_token(app, "root"))
    # A row added by hand takes the seq the next entry needs: the append fails.
    db = sqlite3.connect(data_dir / CATALOG_FILE, isolation_level=None)
    db.execute(
        "INSERT INTO audit_log VALUES (1, 'x', 'mallory', 'cli', NULL, 'x', NULL, 'ok', '{}', "
        "'', '')"
    )
    db.close()
    with caplog.at_level(logging.ERROR, logger="hubsight.web.auditing"):
        response = client.put("/api/v1/retention/Unparsed Data", json={"days": 9})
    assert response.status_code == 200
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "audit trail: retention.update Unparsed Data by root not recorded: the audit trail's "
        "head does not match its entries"
    )


def test_saved_query_changes_are_recorded_with_what_changed(app: FastAPI) -> None:
    client = TestClient(app, headers=_token(app, "ana"))
    body = {"name": "fails", "query": "where(result=FAILED)"}
    saved = client.post("/api/v1/saved-queries", json=body).json()
    changed = body | {"query": "where(result=FAILED) groupby(user)", "shared": True}
    assert client.put(f"/api/v1/saved-queries/{saved['id']}", json=changed).status_code == 200
    assert client.delete(f"/api/v1/saved-queries/{saved['id']}").status_code == 204
    deleted, updated, created = _trail(app)
    assert {e.target for e in (created, updated, deleted)} == {saved["id"]}
    assert created.details["changes"]["owner"] == [None, "ana"]
    assert updated.details["changes"] == {
        "query": ["where(result=FAILED)", "where(result=FAILED) groupby(user)"],
        "shared": [False, True],
    }
    assert deleted.details["changes"]["name"] == ["fails", None]


def test_the_owner_socket_records_the_cli_user_it_is_told(service: Service) -> None:
    socket_app = create_app(service)
    client = TestClient(socket_app, client=("", 0))
    body = {"days": 9}
    told = {ACTOR_HEADER: "cli:alice"}
    assert client.put("/api/v1/retention/Unparsed Data", json=body, headers=told).is_success
    # Anything but a plain cli:<user> is not believed: the service's own OS user instead.
    forged = {ACTOR_HEADER: "root; admin"}
    assert client.put("/api/v1/retention/Unparsed Data", json=body, headers=forged).is_success
    later, first = _trail(socket_app)
    assert (first.actor, first.via, first.address) == ("cli:alice", "cli", None)
    assert later.actor == cli_actor()
