"""Console security: sign-in, cookies, CSRF, roles, API tokens, the login limit, the CLI."""

from __future__ import annotations

import re
import socket
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.cli.run_cmd import _owner_socket
from hubsight.errors import AlreadyExistsError, ConfigError
from hubsight.service import Service
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import SESSION_COOKIE, ConsoleAuth, LoginLimiter

from tests.support import FAST_HASH

ADMIN_PW = "correct horse battery"
ANALYST_PW = "analyst passphrase here"


@pytest.fixture
def users(data_dir: Path) -> UserStore:
    store = UserStore(data_dir, hasher=FAST_HASH)
    store.create("root", ADMIN_PW, "admin")
    store.create("ana", ANALYST_PW, "analyst")
    return store


def _client(service: Service, users: UserStore, base_url: str = "http://testserver") -> TestClient:
    auth = ConsoleAuth(users, limiter=LoginLimiter(attempts=3, window_s=60))
    return TestClient(create_app(service, auth=auth), base_url=base_url, follow_redirects=False)


def _sign_in(client: TestClient, name: str, password: str) -> str:
    """Sign in; the CSRF token the console page carries."""
    response = client.post("/login", data={"name": name, "password": password, "next": "/"})
    assert response.status_code == 303, response.text
    page = client.get("/sources")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


SOURCE = {"name": "k1", "profile": {"kind": "kafka", "bootstrap": "127.0.0.1:1"}}


def test_without_a_session_everything_but_health_is_refused(
    service: Service, users: UserStore
) -> None:
    client = _client(service, users)
    assert client.get("/health").status_code == 200
    refused = client.get("/api/v1/event-sources")
    assert refused.status_code == 401
    assert refused.json()["error"] == "sign in required"
    assert client.post("/api/v1/search", json={"query": "x"}).status_code == 401
    assert client.get("/openapi.json").status_code == 303
    page = client.get("/alerts")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=/alerts")
    assert client.get("/login").status_code == 200


def test_session_cookie_is_httponly_strict_and_secure_only_over_tls(
    service: Service, users: UserStore
) -> None:
    plain = _client(service, users)
    cookie = plain.post("/login", data={"name": "root", "password": ADMIN_PW}).headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie
    tls = _client(service, users, base_url="https://testserver")
    cookie = tls.post("/login", data={"name": "root", "password": ADMIN_PW}).headers["set-cookie"]
    assert "Secure" in cookie


def test_changes_need_the_csrf_token_of_the_session(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    csrf = _sign_in(client, "root", ADMIN_PW)
    assert client.get("/api/v1/event-sources").json() == []
    missing = client.post("/api/v1/event-sources", json=SOURCE)
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["error"]
    for sent in (b"x", ("ü" * 43).encode()):
        wrong = client.post("/api/v1/event-sources", json=SOURCE, headers={b"X-CSRF-Token": sent})
        assert wrong.status_code == 403
    made = client.post("/api/v1/event-sources", json=SOURCE, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
    assert client.get("/api/v1/event-sources").status_code == 401


def test_analyst_searches_but_cannot_change_sources_rules_or_accounts(
    service: Service, users: UserStore
) -> None:
    client = _client(service, users)
    csrf = {"X-CSRF-Token": _sign_in(client, "ana", ANALYST_PW)}
    assert client.get("/api/v1/event-sources").status_code == 200
    for method, path, body in [
        ("POST", "/api/v1/event-sources", SOURCE),
        ("DELETE", "/api/v1/event-sources/k1", None),
        ("PUT", "/api/v1/rules/some.rule/enabled", {"enabled": False}),
        ("POST", "/api/v1/accounts", {"name": "eve", "password": "x" * 12, "role": "admin"}),
    ]:
        response = client.request(method, path, json=body, headers=csrf)
        assert response.status_code == 403, path
        assert response.json()["error"] == "the analyst role cannot change this"
    settings = client.get("/settings").text
    assert 'id="new-account"' not in settings
    assert 'id="new-token"' in settings
    searched = client.post("/api/v1/search", json={"query": "where(", "last": "1h"}, headers=csrf)
    assert searched.status_code == 400
    assert searched.json()["column"] == 7
    assert [a.name for a in users.accounts()] == ["ana", "root"]


def test_admin_creates_an_analyst_from_the_console(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    csrf = {"X-CSRF-Token": _sign_in(client, "root", ADMIN_PW)}
    short = client.post("/api/v1/accounts", json={"name": "bo", "password": "short"}, headers=csrf)
    assert short.status_code == 400
    assert "shorter than 12" in short.json()["error"]
    made = client.post(
        "/api/v1/accounts", json={"name": "bo", "password": "long enough pass"}, headers=csrf
    )
    assert made.json() == {"name": "bo", "role": "analyst"}
    bo = TestClient(client.app, follow_redirects=False)
    _sign_in(bo, "bo", "long enough pass")
    assert client.delete("/api/v1/accounts/bo", headers=csrf).status_code == 204
    assert bo.get("/api/v1/alerts").status_code == 401
    last = client.delete("/api/v1/accounts/root", headers=csrf)
    assert last.status_code == 400
    assert last.json()["error"] == "'root' is the last admin"


@pytest.mark.parametrize("name", ["ana\n", "bo\n", "Ünï", "_bo", "b" * 65])
def test_account_names_outside_the_rule_are_refused(
    service: Service, users: UserStore, name: str
) -> None:
    # "ana\n" passed the name check ("$" matches before a final newline) and listed as "ana".
    client = _client(service, users)
    csrf = {"X-CSRF-Token": _sign_in(client, "root", ADMIN_PW)}
    body = {"name": name, "password": "long enough pass"}
    refused = client.post("/api/v1/accounts", json=body, headers=csrf)
    assert refused.status_code == 400
    assert "ASCII letters" in refused.json()["hint"]
    assert [a.name for a in users.accounts()] == ["ana", "root"]
    edge = client.post("/api/v1/accounts", json=body | {"name": "b" * 64}, headers=csrf)
    assert edge.status_code == 201


def test_a_source_name_ending_in_a_newline_is_refused(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    csrf = {"X-CSRF-Token": _sign_in(client, "root", ADMIN_PW)}
    body = {"name": "k1\n", "profile": {"kind": "kafka", "bootstrap": "127.0.0.1:1"}}
    refused = client.post("/api/v1/event-sources", json=body | {"topics": ["t"]}, headers=csrf)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("name: ")
    assert service.catalog.all() == []


def test_api_tokens_work_without_cookie_or_csrf(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    token = users.issue_token("root", "script")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/event-sources", json=SOURCE, headers=bearer).status_code == 201
    bad = client.get("/api/v1/event-sources", headers={"Authorization": "Bearer hs_nope"})
    assert bad.status_code == 401
    analyst = {"Authorization": f"Bearer {users.issue_token('ana', 'soar')}"}
    assert client.delete("/api/v1/event-sources/k1", headers=analyst).status_code == 403


def test_failed_sign_ins_are_rate_limited(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    for _ in range(3):
        wrong = client.post("/login", data={"name": "root", "password": "guess guess guess"})
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
    blocked = client.post("/login", data={"name": "root", "password": ADMIN_PW})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")


def test_a_sign_in_sent_as_json_is_told_to_send_a_form(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    sent = client.post("/login", json={"name": "root", "password": ADMIN_PW})
    # It said "name: Field required" of a name that was sent.
    assert sent.status_code == 422
    assert sent.json()["error"].startswith("this request takes a form")
    assert "API token" in sent.json()["hint"]
    assert ADMIN_PW not in sent.text
    assert SESSION_COOKIE not in sent.headers.get("set-cookie", "")
    # A form missing a field still names the field, and JSON routes are as before.
    half = client.post("/login", data={"name": "root"})
    assert (half.status_code, half.json()["error"]) == (422, "invalid request")
    assert half.json()["problems"][0]["loc"] == ["body", "password"]


def test_next_never_leaves_the_server(service: Service, users: UserStore) -> None:
    client = _client(service, users)
    data = {"name": "root", "password": ADMIN_PW, "next": "//evil.example/x"}
    assert client.post("/login", data=data).headers["location"] == "/"


def test_store_keeps_only_hashes(data_dir: Path, users: UserStore) -> None:
    session_id, session = users.open_session(users.accounts()[1])
    token = users.issue_token("root", "t")
    dump = "\n".join(sqlite3.connect(data_dir / CATALOG_FILE).iterdump())
    for secret in (ADMIN_PW, ANALYST_PW, session_id, token):
        assert secret not in dump
    assert "$argon2id$" in dump
    assert users.session(session_id) == session
    assert users.check_password("root", "wrong password!") is None
    assert users.check_password("nobody", ADMIN_PW) is None
    with pytest.raises(AlreadyExistsError):
        users.create("root", ADMIN_PW, "admin")
    with pytest.raises(ConfigError, match="not a valid user name"):
        users.create("bad name", ADMIN_PW, "admin")


def test_cli_creates_admin_from_env_or_prompt_and_never_echoes(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "users"]
    missing = runner.invoke(cli, [*base, "create-admin", "--name", "a", "--password-env", "NOPE"])
    assert missing.exit_code == 2
    assert "NOPE is empty or not set" in missing.output
    made = runner.invoke(
        cli,
        [*base, "create-admin", "--name", "admin", "--password-env", "HS_PW"],
        env={"HS_PW": ADMIN_PW},
    )
    assert made.exit_code == 0, made.output
    # It said "sign in at http://127.0.0.1:8080/login" also of a console on another port.
    assert "unless `hubsight run` was given another --host or --port" in made.output
    prompted = runner.invoke(
        cli, [*base, "create", "--name", "ana", "--role", "analyst"], input=f"{ANALYST_PW}\n" * 2
    )
    assert prompted.exit_code == 0, prompted.output
    assert ANALYST_PW not in prompted.output
    listed = runner.invoke(cli, [*base, "list"])
    assert listed.output.splitlines() == ["admin\tadmin", "ana\tanalyst"]
    assert UserStore(data_dir).check_password("ana", ANALYST_PW) is not None


def test_cli_without_a_terminal_or_a_password_says_how_to_give_one(data_dir: Path) -> None:
    """Nothing on stdin and no terminal: click warned the input may be echoed, then 'Aborted!'
    (exit 1); a piped password is one line, with no repeat to type."""
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "users"]
    empty = runner.invoke(cli, [*base, "create-admin", "--name", "admin"], input="")
    assert empty.exit_code == 2, empty.output
    assert empty.stderr.splitlines() == [
        "error: no password given, and no terminal to ask for it on (standard input is empty)",
        "hint: give --password-env VAR, or pipe it on standard input",
    ]
    piped = runner.invoke(cli, [*base, "create-admin", "--name", "admin"], input=f"{ADMIN_PW}\n")
    assert piped.exit_code == 0, piped.output
    assert UserStore(data_dir).check_password("admin", ADMIN_PW) is not None


def test_the_unauthenticated_socket_is_the_owners_only(tmp_path: Path) -> None:
    sock = _owner_socket(tmp_path / "api.sock")
    try:
        assert stat.S_IMODE((tmp_path / "api.sock").stat().st_mode) == 0o600
    finally:
        sock.close()


def test_a_command_reaching_the_socket_before_the_server_runs_waits_instead_of_refused(
    tmp_path: Path,
) -> None:
    sock = _owner_socket(tmp_path / "api.sock")
    with sock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(tmp_path / "api.sock"))  # refused (ECONNREFUSED) if not listening
        accepted, _ = sock.accept()
        accepted.close()
