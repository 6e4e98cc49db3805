"""Notification targets over the REST API: add, list, edit, remove, test; roles; secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hubsight.detect.db import DB_NAME, DetectDB
from hubsight.detect.generation import settings_generation
from hubsight.detect.runtime import load_targets
from hubsight.detect.targets import SmtpConfig
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.detect.receivers import http_receiver, smtp_server
from tests.support import FAST_HASH, PLANTED_PASSWORD, assert_no_secret

ADMIN = ("root", "correct horse battery")
ANALYST = ("ana", "analyst passphrase here")
TARGETS = "/api/v1/notify/targets"


@pytest.fixture
def app_parts(data_dir: Path) -> Iterator[tuple[Service, UserStore]]:
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create(*ADMIN, "admin")
    users.create(*ANALYST, "analyst")
    store = EmbeddedStore(data_dir)
    try:
        yield Service(data_dir, store, Catalog(data_dir)), users
    finally:
        store.close()


def _client(parts: tuple[Service, UserStore], account: tuple[str, str]) -> TestClient:
    service, users = parts
    app = create_app(service, auth=ConsoleAuth(users))
    app.state.detect_db = DetectDB.in_dir(service.data_dir)
    client = TestClient(app, follow_redirects=False)
    response = client.post("/login", data={"name": account[0], "password": account[1]})
    assert response.status_code == 303
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/alerts").text)
    assert match is not None
    client.headers["X-CSRF-Token"] = match.group(1)
    return client


def _smtp(port: int, **extra: object) -> dict[str, object]:
    return {
        "kind": "smtp",
        "name": "soc-mail",
        "host": "127.0.0.1",
        "port": port,
        "sender": "hubsight@contoso.com",
        "recipients": ["soc@contoso.com"],
        "username": "hubsight",
        "password": PLANTED_PASSWORD,
        "severities": ["High"],
    } | extra


def test_admin_adds_edits_tests_and_removes_a_target(
    app_parts: tuple[Service, UserStore], data_dir: Path
) -> None:
    client = _client(app_parts, ADMIN)
    db = DetectDB.in_dir(data_dir)
    before = settings_generation(db)
    added = client.post(TARGETS, json=_smtp(2525))
    assert added.status_code == 201, added.text
    assert added.json()["password"] == "set"
    assert settings_generation(db) == before + 1
    listed = client.get(TARGETS).json()
    assert [(t["name"], t["origin"], t["password"]) for t in listed] == [
        ("soc-mail", "console", "set")
    ]
    assert PLANTED_PASSWORD not in client.get(TARGETS).text + client.get("/settings").text
    # Stored encrypted: the password is nowhere in the database file.
    assert PLANTED_PASSWORD.encode() not in (data_dir / DB_NAME).read_bytes()
    assert client.post(TARGETS, json=_smtp(2525)).status_code == 409

    # The password never follows a new server: moving the target needs it typed again.
    with smtp_server() as (port, box):
        moved = client.put(f"{TARGETS}/soc-mail", json=_smtp(port, password=""))
        assert moved.status_code == 422, moved.text
        assert moved.json()["error"] == (
            f"the destination changed to smtp://127.0.0.1:{port}: enter password again"
        )
        assert "never sent to a new destination" in moved.json()["hint"]
        assert client.put(f"{TARGETS}/soc-mail", json=_smtp(port)).status_code == 200
        # An edit that leaves the password empty and the server as it is keeps the password.
        edited = client.put(f"{TARGETS}/soc-mail", json=_smtp(port, password="", username=None))
        assert edited.status_code == 200, edited.text
        (target,) = [c.target for c in load_targets(data_dir, db)]
        assert isinstance(target, SmtpConfig)
        assert target.password is not None
        assert target.password.get_secret_value() == PLANTED_PASSWORD
        result = client.post(f"{TARGETS}/soc-mail/test").json()
    assert result["ok"] is True, result
    assert result["target"] == "smtp:soc-mail"
    assert len(box.mails) == 1

    bad = client.put(f"{TARGETS}/soc-mail", json=_smtp(port, recipients=[]))
    assert bad.status_code == 400
    assert "recipients" in bad.json()["error"]
    assert client.put(f"{TARGETS}/soc-mail", json=_smtp(port, name="x")).status_code == 400
    assert client.delete(f"{TARGETS}/soc-mail").status_code == 204
    assert client.get(TARGETS).json() == []
    assert client.delete(f"{TARGETS}/soc-mail").status_code == 404


def test_a_failed_test_reports_the_error_and_a_hint(
    app_parts: tuple[Service, UserStore], data_dir: Path
) -> None:
    client = _client(app_parts, ADMIN)
    with http_receiver(403) as (url, received):
        body = {"kind": "webhook", "name": "soar", "url": f"{url}/h?k=s3cret"}
        assert client.post(TARGETS, json=body | {"auth_header": "Bearer nope"}).status_code == 201
        result = client.post(f"{TARGETS}/soar/test").json()
    assert (result["ok"], result["error"]) == (False, "HTTP 403")
    assert "auth header" in result["hint"]
    assert received.requests[0][0]["authorization"] == "Bearer nope"
    (listed,) = client.get(TARGETS).json()
    assert (listed["url"], listed["auth_header"], listed["where"]) == ("set", "set", url)
    assert "s3cret" not in client.get(TARGETS).text


def test_detect_toml_targets_are_listed_and_a_stored_one_replaces_them_by_name(
    app_parts: tuple[Service, UserStore], data_dir: Path
) -> None:
    (data_dir / "detect.toml").write_text(
        '[[notify.syslog]]\nhost = "siem.example"\n\n'
        '[[notify.syslog]]\nname = "backup"\nhost = "siem2.example"\nprotocol = "tcp"\n'
    )
    client = _client(app_parts, ADMIN)
    listed = {t["name"]: (t["origin"], t["where"]) for t in client.get(TARGETS).json()}
    assert listed == {
        "syslog-1": ("detect.toml", "udp://siem.example:514"),
        "backup": ("detect.toml", "tcp://siem2.example:514"),
    }
    # The file's targets are not edited here, but a stored one of the same name wins.
    assert client.delete(f"{TARGETS}/backup").status_code == 404
    body = {"kind": "syslog", "name": "backup", "host": "siem3.example"}
    assert client.post(TARGETS, json=body).status_code == 201
    listed = {t["name"]: (t["origin"], t["where"]) for t in client.get(TARGETS).json()}
    assert listed["backup"] == ("console", "udp://siem3.example:514")


def test_a_plain_secret_in_detect_toml_is_refused(
    app_parts: tuple[Service, UserStore], data_dir: Path
) -> None:
    (data_dir / "detect.toml").write_text(
        '[[notify.smtp]]\nhost = "m"\nsender = "a@b.c"\nrecipients = ["x@y.z"]\npassword = "p"\n'
    )
    client = _client(app_parts, ADMIN)
    refused = client.get(TARGETS)
    assert refused.status_code == 400
    assert "secrets do not belong in detect.toml" in refused.json()["error"]


def test_an_analyst_reads_targets_but_cannot_change_or_test_them(
    app_parts: tuple[Service, UserStore],
) -> None:
    admin = _client(app_parts, ADMIN)
    body = {"kind": "syslog", "name": "siem", "host": "127.0.0.1"}
    assert admin.post(TARGETS, json=body).status_code == 201
    analyst = _client(app_parts, ANALYST)
    assert [t["name"] for t in analyst.get(TARGETS).json()] == ["siem"]
    assert analyst.post(TARGETS, json=body | {"name": "x"}).status_code == 403
    assert analyst.put(f"{TARGETS}/siem", json=body).status_code == 403
    assert analyst.delete(f"{TARGETS}/siem").status_code == 403
    refused = analyst.post(f"{TARGETS}/siem/test")
    assert refused.status_code == 403
    assert refused.json()["error"] == "the analyst role cannot change this"
    page = analyst.get("/settings").text
    assert 'id="target-form"' not in page
    assert "data-test-target" not in page


def test_changes_need_the_csrf_token(app_parts: tuple[Service, UserStore]) -> None:
    client = _client(app_parts, ADMIN)
    del client.headers["X-CSRF-Token"]
    body = {"kind": "syslog", "name": "siem", "host": "127.0.0.1"}
    assert client.post(TARGETS, json=body).status_code == 403


def test_a_webhooks_header_never_follows_a_new_url(app_parts: tuple[Service, UserStore]) -> None:
    client = _client(app_parts, ADMIN)
    body = {"kind": "webhook", "name": "soar", "url": "https://soar.contoso.com/hook"}
    assert client.post(TARGETS, json=body | {"auth_header": PLANTED_PASSWORD}).status_code == 201
    same_host = client.put(f"{TARGETS}/soar", json=body | {"url": "https://soar.contoso.com/v2"})
    assert same_host.status_code == 200, same_host.text
    elsewhere = body | {"url": "https://attacker.example/hook"}
    moved = client.put(f"{TARGETS}/soar", json=elsewhere)
    assert moved.status_code == 422
    assert moved.json()["error"].endswith("enter auth_header again")
    assert_no_secret(moved.text)
    typed = client.put(f"{TARGETS}/soar", json=elsewhere | {"auth_header": "Bearer new"})
    assert typed.status_code == 200
