"""API tokens expire, can be revoked, and are listed with their last use, never their secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.errors import ConfigError
from hubsight.service import Service
from hubsight.store.audit import AuditFilter, AuditLog
from hubsight.store.token_sweep import sweep_tokens
from hubsight.store.users import (
    DEFAULT_TOKEN_DAYS,
    ENDED_TOKENS_KEPT_DAYS,
    LAST_USE_EVERY_S,
    UserStore,
    token_id,
)
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH, Clock

DAY = 86400.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(data_dir: Path, clock: Clock) -> UserStore:
    store = UserStore(data_dir, hasher=FAST_HASH, clock=clock)
    store.create("root", "admin passphrase here", "admin")
    store.create("ana", "analyst passphrase here", "analyst")
    return store


@pytest.fixture
def client(service: Service, users: UserStore) -> TestClient:
    return TestClient(create_app(service, auth=ConsoleAuth(users)))


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_lets_in_until_the_second_it_expires(
    client: TestClient, users: UserStore, clock: Clock
) -> None:
    issued_at = clock.now
    setup = _as(users.issue_token("ana", "setup"))
    made = client.post("/api/v1/tokens", json={"label": "soar script", "days": 2}, headers=setup)
    assert made.status_code == 201
    token = made.json()["token"]
    assert made.json()["expires_at"] == "2027-01-17T08:00:00Z"  # Clock starts 2027-01-15 08:00
    clock.now = issued_at + 2 * DAY - 1
    assert client.get("/api/v1/accounts", headers=_as(token)).status_code == 200
    clock.now = issued_at + 2 * DAY
    refused = client.get("/api/v1/accounts", headers=_as(token))
    assert refused.status_code == 401
    assert refused.json() == {
        "error": f"the API token 'soar script' ({token_id(token)}) expired at 2027-01-17T08:00:00Z",
        "hint": "issue a new one in Settings (API tokens), or on the server: hubsight users "
        "token --name ana --label 'soar script' [--days N]",
    }
    # Unasked, a token lasts 90 days; more than a year is refused.
    default = users.token(token_id(users.issue_token("ana", "x")))
    assert default.expires_at == clock.now + DEFAULT_TOKEN_DAYS * DAY
    root = _as(users.issue_token("root", "admin"))
    for days in (0, 366):
        too_long = client.post("/api/v1/tokens", json={"label": "x", "days": days}, headers=root)
        assert too_long.status_code == 422
    assert client.post("/api/v1/tokens", json={"label": "x", "days": 365}, headers=root).is_success
    with pytest.raises(ConfigError, match="lasts 1 to 365 days, not 366"):
        users.issue_token("ana", "x", days=366)


def test_a_revoked_token_is_refused_at_once_and_only_its_owner_or_an_admin_revokes(
    client: TestClient, users: UserStore
) -> None:
    ana, other, root = (users.issue_token(*a) for a in [("ana", "a"), ("ana", "b"), ("root", "r")])
    # An analyst revokes their own token, never an admin's (which is "not found" to them).
    assert client.delete(f"/api/v1/tokens/{token_id(root)}", headers=_as(ana)).status_code == 404
    assert client.delete(f"/api/v1/tokens/{token_id(ana)}", headers=_as(ana)).status_code == 204
    refused = client.get("/api/v1/accounts", headers=_as(ana))
    assert refused.status_code == 401
    assert refused.json()["error"].startswith(f"the API token 'a' ({token_id(ana)}) revoked at ")
    # An admin revokes anyone's.
    assert client.get("/api/v1/accounts", headers=_as(other)).status_code == 200
    assert client.delete(f"/api/v1/tokens/{token_id(other)}", headers=_as(root)).status_code == 204
    assert client.get("/api/v1/accounts", headers=_as(other)).status_code == 401
    assert client.get("/api/v1/accounts", headers=_as(root)).status_code == 200
    assert client.delete("/api/v1/tokens/nonsense", headers=_as(root)).status_code == 404


def test_tokens_are_listed_with_last_use_never_with_their_secrets(
    client: TestClient, users: UserStore, clock: Clock
) -> None:
    ana, root = users.issue_token("ana", "soar"), users.issue_token("root", "ops")
    assert users.token(token_id(ana)).last_used is None
    first_use = clock.now
    assert client.get("/api/v1/tokens", headers=_as(ana)).status_code == 200
    # Uses within a minute of the last recorded one are not written again.
    clock.now = first_use + LAST_USE_EVERY_S - 1
    mine = client.get("/api/v1/tokens", headers=_as(ana))
    assert [(t["label"], t["last_used"]) for t in mine.json()] == [("soar", "2027-01-15T08:00:00Z")]
    assert users.token(token_id(ana)).last_used == first_use
    clock.now = first_use + LAST_USE_EVERY_S
    client.get("/api/v1/tokens", headers=_as(ana))
    assert users.token(token_id(ana)).last_used == clock.now
    # An admin sees every account's tokens; an analyst only their own.
    everyone = client.get("/api/v1/tokens", headers=_as(root))
    assert [(t["name"], t["label"]) for t in everyone.json()] == [("ana", "soar"), ("root", "ops")]
    settings = client.get("/settings", headers=_as(root)).text
    assert token_id(ana) in settings
    for text in (mine.text, everyone.text, settings):
        assert ana not in text
        assert root not in text


def test_the_cli_issues_lists_and_revokes_tokens(data_dir: Path, users: UserStore) -> None:
    base = ["--data-dir", str(data_dir), "users"]
    runner = CliRunner()
    issued = runner.invoke(cli, [*base, "token", "--name", "ana", "--label", "cron", "--days", "7"])
    assert issued.exit_code == 0, issued.output
    # stdout is the secret alone, as scripts capture it; the id and expiry go to stderr.
    secret = issued.stdout.strip()
    assert secret.startswith("hs_")
    assert issued.stderr.startswith(f"id {token_id(secret)}, expires ")
    listed = json.loads(runner.invoke(cli, [*base, "tokens", "--name", "ana", "--json"]).stdout)
    assert [(t["id"], t["label"], t["status"]) for t in listed] == [
        (token_id(secret), "cron", "active")
    ]
    assert secret not in runner.invoke(cli, [*base, "tokens"]).output
    revoked = runner.invoke(cli, [*base, "revoke-token", "--id", token_id(secret)])
    assert revoked.stdout == f"revoked {token_id(secret)} ('cron' of ana)\n"
    assert users.token(token_id(secret)).revoked_at is not None
    too_long = runner.invoke(
        cli, [*base, "token", "--name", "ana", "--label", "x", "--days", "400"]
    )
    assert too_long.exit_code == 2


def test_housekeeping_deletes_a_token_30_days_after_it_ended_and_records_it(
    client: TestClient, data_dir: Path, users: UserStore, clock: Clock
) -> None:
    start = clock.now
    expiring = token_id(users.issue_token("ana", "cron", days=1))
    revoked = token_id(users.issue_token("ana", "old script"))
    active = token_id(users.issue_token("root", "ops", days=365))
    users.revoke_token(revoked)
    audit = AuditLog(data_dir)
    kept = ENDED_TOKENS_KEPT_DAYS * DAY
    # The list says when an ended token goes; an active one has no such date.
    listed = listed_by_id(client, users)
    assert listed[revoked]["deleted_after"] == "2027-02-14T08:00:00Z"
    assert (listed[expiring]["status"], listed[expiring]["deleted_after"]) == ("active", None)
    assert listed[active]["deleted_after"] is None
    clock.now = start + DAY
    assert listed_by_id(client, users)[expiring]["deleted_after"] == "2027-02-15T08:00:00Z"
    settings = client.get("/settings", headers=_as(users.issue_token("root", "page"))).text
    assert "stays listed 30 days, then is deleted" in settings
    assert "(deleted after <time" in settings
    # Exactly 30 days after the revocation it is still kept; a second later it is deleted.
    clock.now = start + kept
    assert sweep_tokens(users, audit) == []
    clock.now = start + kept + 1
    assert [t.id for t in sweep_tokens(users, audit)] == [revoked]
    assert revoked not in {t.id for t in users.tokens()}
    clock.now = start + DAY + kept + 1
    assert [t.id for t in sweep_tokens(users, audit)] == [expiring]
    assert {t.id for t in users.tokens()} >= {active}
    assert expiring not in {t.id for t in users.tokens()}
    entries = audit.entries(AuditFilter(action="token.delete"))
    assert [(e.actor, e.via, e.target, e.details["id"], e.details["reason"]) for e in entries] == [
        ("hubsight", "housekeeping", "ana", expiring, "expired"),
        ("hubsight", "housekeeping", "ana", revoked, "revoked"),
    ]
    assert entries[0].details["ended_at"] == "2027-01-16T08:00:00Z"
    assert audit.verify().ok


def listed_by_id(client: TestClient, users: UserStore) -> dict[str, dict[str, str | None]]:
    """Every token as an admin lists them through the API, by id."""
    root = _as(users.issue_token("root", "lister"))
    return {t["id"]: t for t in client.get("/api/v1/tokens", headers=root).json()}
