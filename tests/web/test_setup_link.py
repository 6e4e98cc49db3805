"""The first-run setup link: printed once on the terminal, creates the first admin, works once."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
import uvicorn
from fastapi.testclient import TestClient

from hubsight.cli.run_cmd import _tcp_config, announce_first_run, console_url
from hubsight.service import Service
from hubsight.store.audit import AuditLog
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.setup_links import SETUP_LINK_S, SetupLinks, SetupRefused
from hubsight.store.users import Account, UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import SESSION_COOKIE, ConsoleAuth, LoginLimiter
from hubsight.web.setup_routes import SETUP_CSRF_COOKIE

from tests.support import FAST_HASH, Clock, Terminal, wait_until

PASSPHRASE = "first admin passphrase"
NEW_LINK_HINT = "every start of `hubsight run` (or `make run`) prints a new link"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(data_dir: Path, clock: Clock) -> UserStore:
    return UserStore(data_dir, hasher=FAST_HASH, clock=clock)


@pytest.fixture
def client(service: Service, users: UserStore) -> TestClient:
    auth = ConsoleAuth(users, limiter=LoginLimiter(attempts=5, window_s=300))
    return TestClient(create_app(service, auth=auth), follow_redirects=False)


def _form(client: TestClient, secret: str) -> dict[str, str]:
    """Open the link; the form's fields with the CSRF token the page carries."""
    page = client.get("/setup", params={"token": secret})
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return {"token": secret, "csrf": match.group(1), "name": "alice"}


def _create(
    client: TestClient, form: dict[str, str], password: str = PASSPHRASE, **over: str
) -> httpx2.Response:
    """Send the setup form with ``password`` typed twice (``over`` changes fields)."""
    data = form | {"password": password, "repeat": password} | over
    return client.post("/setup", data=data)


def test_the_link_creates_the_first_admin_signs_in_and_works_once(
    client: TestClient, users: UserStore, data_dir: Path
) -> None:
    secret, _ = SetupLinks(users).issue()
    page = client.get("/setup", params={"token": secret})
    assert (page.headers["cache-control"], page.headers["referrer-policy"]) == (
        "no-store",
        "no-referrer",
    )
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{SETUP_CSRF_COOKIE}=")
    assert all(part in cookie for part in ("HttpOnly", "SameSite=strict", "Path=/setup"))
    form = _form(client, secret)
    # Refusals that leave the link usable: a form from elsewhere, typos, a short passphrase.
    forged = _create(client, form, csrf="x" * 43)
    assert forged.status_code == 403
    assert "CSRF token is missing or wrong" in forged.text
    cookieless = TestClient(client.app, follow_redirects=False)
    assert _create(cookieless, form).status_code == 403
    differ = _create(client, form, repeat=PASSPHRASE + "!")
    assert (differ.status_code, "The two passphrases differ." in differ.text) == (400, True)
    short = _create(client, form, password="eleven char")
    assert short.status_code == 400
    assert "The password is shorter than 12 characters: choose a longer" in short.text
    bad_name = _create(client, form, name="al ice")
    assert "is not a valid user name" in bad_name.text
    assert users.accounts() == []
    made = _create(client, form)
    assert (made.status_code, made.headers["location"]) == (303, "/")
    assert f"{SESSION_COOKIE}=" in made.headers["set-cookie"]
    assert users.accounts() == [Account("alice", "admin")]
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert 'class="who">alice' in dashboard.text
    # Once only: the page and the form both refuse, saying how to get a new link.
    again = client.get("/setup", params={"token": secret})
    assert again.status_code == 410
    assert "This setup link was used already (at 2027-01-15T08:00:00Z)" in again.text
    assert NEW_LINK_HINT in again.text
    # A copy of the form with its cookie (the success ended that cookie) is refused too.
    client.cookies.set(SETUP_CSRF_COOKIE, form["csrf"], domain="testserver.local", path="/setup")
    replay = _create(client, form, name="mallory")
    assert (replay.status_code, "used already" in replay.text) == (410, True)
    assert users.accounts() == [Account("alice", "admin")]
    # The trail names the new admin, never the link; the file keeps only the link's hash.
    entries = [e for e in AuditLog(data_dir).entries() if e.outcome == "ok"]
    assert [(e.action, e.actor, e.target) for e in entries] == [
        ("account.create", "alice", "alice")
    ]
    assert entries[0].details["changes"] == {"role": [None, "admin"]}
    trail = json.dumps([e.as_dict() for e in AuditLog(data_dir).entries()])
    dump = "\n".join(sqlite3.connect(data_dir / CATALOG_FILE).iterdump())
    for where in (trail, dump, again.text):
        assert secret not in where


def test_the_link_expires_at_the_edge(client: TestClient, users: UserStore, clock: Clock) -> None:
    secret, expires_at = SetupLinks(users).issue()
    assert expires_at == clock.now + SETUP_LINK_S == clock.now + 900
    clock.now = expires_at - 0.001
    form = _form(client, secret)
    clock.now = expires_at
    page = client.get("/setup", params={"token": secret})
    assert page.status_code == 410
    assert "This setup link expired at 2027-01-15T08:15:00Z." in page.text
    assert NEW_LINK_HINT in page.text
    assert _create(client, form).status_code == 410
    assert users.accounts() == []


def test_a_replaced_an_unknown_link_and_any_link_once_an_account_exists_are_refused(
    client: TestClient, users: UserStore, clock: Clock
) -> None:
    links = SetupLinks(users)
    old, _ = links.issue()
    clock.now += 60
    new, _ = links.issue()
    form = _form(client, new)
    replaced = client.get("/setup", params={"token": old})
    assert replaced.status_code == 410
    assert "A newer setup link replaced this one at 2027-01-15T08:01:00Z." in replaced.text
    for token in ("", new[:-1]):
        unknown = client.get("/setup", params={"token": token})
        assert unknown.status_code == 410
        assert "This setup link is not valid" in unknown.text
    # An account made another way (the CLI) ends the link, an analyst's too.
    users.create("ana", "analyst passphrase", "analyst")
    taken = client.get("/setup", params={"token": new})
    assert taken.status_code == 410
    assert "The console has an account already" in taken.text
    assert _create(client, form).status_code == 410
    assert links.create_admin(new, "eve", PASSPHRASE) == SetupRefused("account")
    assert [a.name for a in users.accounts()] == ["ana"]


def test_links_that_do_not_work_are_rate_limited_like_sign_ins(
    client: TestClient, users: UserStore, clock: Clock, data_dir: Path
) -> None:
    secret, _ = SetupLinks(users).issue()
    form = _form(client, secret)
    for guess in range(4):
        assert client.get("/setup", params={"token": f"guess-{guess}"}).status_code == 410
    # A form sent without its cookie (from another site) counts too.
    assert _create(TestClient(client.app), form).status_code == 403
    blocked = client.get("/setup", params={"token": secret})
    assert blocked.status_code == 429
    assert "try again in 300 seconds" not in blocked.text
    assert "try again in 5 minutes" in blocked.text
    assert int(blocked.headers["retry-after"]) == 301
    seen = len(AuditLog(data_dir).entries())
    assert _create(client, form).status_code == 429
    assert users.accounts() == []
    # One entry per refused attempt would let anyone fill the disk: none while blocked.
    assert len(AuditLog(data_dir).entries()) == seen
    # Sign-ins from the address are counted apart: a mistyped link does not lock them out.
    assert client.post("/login", data={"name": "x", "password": "y"}).status_code == 401
    clock.now += 300
    assert _create(client, form).status_code == 303


def test_two_browsers_racing_with_one_link_make_one_admin(users: UserStore) -> None:
    links = SetupLinks(users)
    secret, _ = links.issue()
    start = threading.Barrier(2)
    results: list[Account | SetupRefused] = []

    def use(name: str) -> None:
        start.wait()
        results.append(links.create_admin(secret, name, PASSPHRASE))

    threads = [threading.Thread(target=use, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [r for r in results if isinstance(r, Account)]
    assert len(made) == 1
    assert SetupRefused("used", users.now()) in results
    assert users.accounts() == made


def _status(url: str) -> int:
    # urllib logs nothing, so every log record seen comes from the server side.
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http to loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_run_prints_the_link_on_the_terminal_only(
    service: Service, users: UserStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(service, auth=ConsoleAuth(users))
    # The listener as `hubsight run` configures it (its access log too), on a free port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(_tcp_config(app, "127.0.0.1", sock.getsockname()[1]))
    thread = threading.Thread(target=server.run, args=([sock],), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, "the console to listen")
        url = console_url("http", *sock.getsockname())
        terminal = Terminal()
        announce_first_run(users, url, terminal)
        printed = terminal.getvalue()
        link = re.search(rf"{re.escape(url)}/setup\?token=(\S+)", printed)
        assert link is not None
        assert "works once, until 2027-01-15T08:15:00Z (15 minutes)" in printed
        assert "hubsight users create-admin --name NAME" in printed
        assert _status(link.group(0)) == 200
        # A restart prints a new link, which replaces the first.
        second = Terminal()
        announce_first_run(users, url, second)
        assert _status(link.group(0)) == 410
        assert "/setup?token=" in second.getvalue()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert "setup link, valid until 2027-01-15T08:15:00Z, is printed" in caplog.text
    assert link.group(1) not in caplog.text


def test_without_a_terminal_or_with_an_account_no_link_is_issued(
    users: UserStore, caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    piped = io.StringIO()
    announce_first_run(users, "http://127.0.0.1:8080", piped)
    assert piped.getvalue() == ""
    assert "no console account yet: run `hubsight users create-admin --name NAME`" in caplog.text
    users.create("ana", "analyst passphrase", "analyst")
    terminal = Terminal()
    announce_first_run(users, "http://127.0.0.1:8080", terminal)
    assert terminal.getvalue() == ""
    assert "no admin account: run `hubsight users create-admin" in caplog.text
    SetupLinks(users)  # its table, so that an empty one can be told from none issued
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        assert db.execute("SELECT count(*) FROM setup_links").fetchone() == (0,)


def test_the_printed_address_is_one_a_local_browser_opens() -> None:
    assert console_url("http", "0.0.0.0", 8080) == "http://127.0.0.1:8080"  # noqa: S104
    assert console_url("https", "::1", 8443) == "https://[::1]:8443"
    assert console_url("http", "console.example", 80) == "http://console.example:80"
