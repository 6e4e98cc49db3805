"""Session lifetimes (idle and absolute, server-side) and the persisted sign-in limit."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hubsight.errors import ConfigError
from hubsight.service import Service
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.users import Account, Session, SessionExpired, SessionLimits, UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import (
    SESSION_COOKIE,
    SESSION_IDLE_ENV,
    SESSION_MAX_ENV,
    ConsoleAuth,
    LoginLimiter,
    session_limits_from_env,
)

from tests.support import FAST_HASH, Clock

PASSWORD = "correct horse battery"
TEN_MINUTES_IDLE = SessionLimits(idle_s=600, max_s=3600)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(data_dir: Path, clock: Clock) -> UserStore:
    store = UserStore(data_dir, hasher=FAST_HASH, clock=clock)
    store.create("root", PASSWORD, "admin")
    return store


def _client(
    service: Service,
    users: UserStore,
    limits: SessionLimits = TEN_MINUTES_IDLE,
    client: tuple[str, int] = ("203.0.113.7", 50000),
) -> TestClient:
    auth = ConsoleAuth(users, limiter=LoginLimiter(attempts=3, window_s=300), sessions=limits)
    return TestClient(create_app(service, auth=auth), follow_redirects=False, client=client)


def _sign_in(client: TestClient) -> None:
    response = client.post("/login", data={"name": "root", "password": PASSWORD})
    assert response.status_code == 303, response.text


def test_an_idle_session_expires_and_the_login_page_says_so(
    service: Service, users: UserStore, clock: Clock
) -> None:
    client = _client(service, users)
    _sign_in(client)
    clock.now += 500
    assert client.get("/sources").status_code == 200
    # The request at +500 s was activity: +1000 s is 500 s idle, within the 600 s allowed.
    clock.now += 500
    assert client.get("/api/v1/event-sources").status_code == 200
    clock.now += 601
    page = client.get("/sources")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/sources&expired=idle"
    assert f'{SESSION_COOKIE}=""' in page.headers["set-cookie"]
    login = client.get(page.headers["location"])
    assert "Your session expired after a period without activity." in login.text
    assert "Your session expired" not in client.get("/login?expired=bogus").text


def test_an_expired_session_answers_the_api_with_401_and_why(
    service: Service, users: UserStore, clock: Clock
) -> None:
    client = _client(service, users)
    _sign_in(client)
    cookie = client.cookies[SESSION_COOKIE]
    clock.now += 601
    answer = client.get("/api/v1/event-sources")
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "the session expired",
        "hint": "sign in again",
        "expired": "idle",
    }
    # The server refuses the session itself, not only this browser's copy of the cookie.
    again = TestClient(client.app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    assert again.get("/api/v1/event-sources").status_code == 401


def test_activity_does_not_extend_a_session_past_its_maximum(
    service: Service, users: UserStore, clock: Clock
) -> None:
    client = _client(service, users, SessionLimits(idle_s=600, max_s=1500))
    _sign_in(client)
    for _ in range(3):
        clock.now += 400
        assert client.get("/api/v1/event-sources").status_code == 200
    clock.now += 400
    answer = client.get("/api/v1/event-sources")
    assert (answer.status_code, answer.json()["expired"]) == (401, "max")
    _sign_in(client)
    assert client.get("/api/v1/event-sources").status_code == 200


def test_store_tells_an_expired_session_from_an_unknown_one(users: UserStore, clock: Clock) -> None:
    limits = SessionLimits(idle_s=60, max_s=3600)
    session_id, session = users.open_session(users.accounts()[0], limits)
    assert users.session(session_id, limits) == session
    clock.now += 61
    assert users.session(session_id, limits) == SessionExpired("idle")
    assert users.session("never-issued", limits) is None


def test_session_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SESSION_IDLE_ENV, raising=False)
    monkeypatch.delenv(SESSION_MAX_ENV, raising=False)
    assert session_limits_from_env() == SessionLimits(idle_s=1800, max_s=43200)
    monkeypatch.setenv(SESSION_IDLE_ENV, "90s")
    monkeypatch.setenv(SESSION_MAX_ENV, "2h")
    assert session_limits_from_env() == SessionLimits(idle_s=90, max_s=7200)
    monkeypatch.setenv(SESSION_IDLE_ENV, "15")
    assert session_limits_from_env().idle_s == 15
    monkeypatch.setenv(SESSION_IDLE_ENV, "soon")
    with pytest.raises(ConfigError, match="HUBSIGHT_SESSION_IDLE='soon' is not a duration"):
        session_limits_from_env()


def test_the_sign_in_limit_survives_a_restart_and_says_when_to_retry(
    service: Service, data_dir: Path, users: UserStore, clock: Clock
) -> None:
    client = _client(service, users)
    for _ in range(3):
        clock.now += 10
        wrong = client.post("/login", data={"name": "root", "password": "guess guess guess"})
        assert wrong.status_code == 401
    restarted = _client(service, UserStore(data_dir, hasher=FAST_HASH, clock=clock))
    blocked = restarted.post("/login", data={"name": "root", "password": PASSWORD})
    assert blocked.status_code == 429
    # The first failure was at +10 s, the window is 300 s, now is +30 s: 280 s to wait.
    assert blocked.headers["retry-after"] == "281"
    assert "try again in 5 minutes." in blocked.text
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")
    clock.now += 260
    soon = restarted.post("/login", data={"name": "root", "password": PASSWORD})
    assert "try again in 21 seconds." in soon.text
    clock.now += 21
    assert restarted.post("/login", data={"name": "root", "password": PASSWORD}).status_code == 303


def test_the_limit_counts_per_address_and_per_account(
    service: Service, users: UserStore, clock: Clock
) -> None:
    users.create("ana", "analyst passphrase", "analyst")
    users.create("bo", "bo's long passphrase", "analyst")
    attacker = _client(service, users, client=("198.51.100.9", 40000))
    for name in ("ana", "nobody", "ghost"):
        assert attacker.post("/login", data={"name": name, "password": "x"}).status_code == 401
    # Three failures from this address: even a right password for another account waits.
    blocked = attacker.post("/login", data={"name": "bo", "password": "bo's long passphrase"})
    assert blocked.status_code == 429
    # From elsewhere, bo signs in; ana (one failure) too; the guessed names are per account.
    elsewhere = _client(service, users, client=("192.0.2.1", 40000))
    ok = elsewhere.post("/login", data={"name": "ana", "password": "analyst passphrase"})
    assert ok.status_code == 303
    for _ in range(3):
        elsewhere.post("/login", data={"name": "root", "password": "wrong wrong"})
    third = _client(service, users, client=("192.0.2.2", 40000))
    assert third.post("/login", data={"name": "root", "password": PASSWORD}).status_code == 429
    assert users.login_wait(("ip:192.0.2.2",), 3, 300) == 0


def test_sessions_of_a_file_from_before_the_idle_timeout_stay_open(
    data_dir: Path, clock: Clock
) -> None:
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        db.executescript(
            "CREATE TABLE console_users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
            "password_hash TEXT NOT NULL, created_at REAL NOT NULL);"
            "CREATE TABLE console_sessions (id_hash TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "csrf TEXT NOT NULL, expires_at REAL NOT NULL);"
        )
        db.execute("INSERT INTO console_users VALUES ('root', 'admin', 'x', 0)")
        db.execute(
            "INSERT INTO console_sessions VALUES (?, 'root', 'c', ?)",
            (hashlib.sha256(b"old-session").hexdigest(), clock.now + 3600),
        )
    users = UserStore(data_dir, hasher=FAST_HASH, clock=clock)
    assert users.session("old-session") == Session(Account("root", "admin"), "c")
    clock.now += 1801
    assert users.session("old-session") == SessionExpired("idle")
