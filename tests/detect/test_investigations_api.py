"""Investigations through the REST routes and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.store.users import UserStore
from hubsight.web import detect_routes, investigation_routes
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding one brute force that succeeded, in its investigation."""
    rule = build_rule(BruteForceSuccess, {})
    engine = DetectionEngine(DetectDB.in_dir(tmp_path), [rule], options=EngineOptions())
    example = next(e for e in BruteForceSuccess.examples() if e.fires)
    assert engine.process(example.events)
    engine.close()
    return tmp_path


@pytest.fixture
def client(data_dir: Path) -> TestClient:
    app = FastAPI()
    app.state.detect_db = DetectDB.in_dir(data_dir)
    app.state.data_dir = data_dir
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("ana", "analyst passphrase 1", "analyst")
    app.state.auth = ConsoleAuth(users)
    app.include_router(detect_routes.router)
    app.include_router(investigation_routes.router)
    # With accounts the routes need a sign-in: the analyst's API token.
    return TestClient(app, headers={"Authorization": f"Bearer {users.issue_token('ana', 't')}"})


def test_list_detail_triage_and_close(client: TestClient) -> None:
    (listed,) = client.get("/api/v1/investigations").json()
    assert listed["alert_count"] == 1
    assert listed["priority"] == "high"
    inv = listed["id"]
    detail = client.get(f"/api/v1/investigations/{inv}").json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("alert") == 1
    assert kinds.count("evidence") == 11
    times = [e["at"] for e in detail["timeline"]]
    assert times == sorted(times)
    evidence = next(e for e in detail["timeline"] if e["kind"] == "evidence")
    assert evidence["evidence"]["context_url"].startswith("/api/v1/events/")
    user = detail["alerts"][0]["user"]
    assert client.get("/api/v1/investigations", params={"q": user[:4].upper()}).json()
    assert client.get("/api/v1/investigations", params={"q": "nobody-like-this"}).json() == []
    wrong = client.patch(f"/api/v1/investigations/{inv}", json={"assignee": "mallory"})
    assert wrong.status_code == 400
    assert "ana" in wrong.json()["hint"]
    bad = client.patch(f"/api/v1/investigations/{inv}", json={"priority": "urgent"})
    assert bad.status_code == 422
    changed = client.patch(
        f"/api/v1/investigations/{inv}",
        json={"assignee": "ana", "status": "investigating", "comment": "on it"},
    ).json()
    assert (changed["assignee"], changed["status"]) == ("ana", "investigating")
    assert client.get("/api/v1/investigations", params={"assignee": "ana"}).json()
    closed = client.patch(
        f"/api/v1/investigations/{inv}", json={"status": "closed", "disposition": "malicious"}
    ).json()
    assert closed["alerts"][0]["status"] == "closed"
    assert closed["alerts"][0]["disposition"] == "malicious"
    assert client.get("/api/v1/investigations/inv-nope").status_code == 404


def test_bulk_triage_split_and_merge_refusals(client: TestClient) -> None:
    (listed,) = client.get("/api/v1/investigations").json()
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    unknown = client.post("/api/v1/alerts/triage", json={"alert_ids": [alert_id, "nope"]})
    assert unknown.status_code == 404
    done = client.post(
        "/api/v1/alerts/triage", json={"alert_ids": [alert_id], "status": "investigating"}
    )
    assert [a["status"] for a in done.json()] == ["investigating"]
    split = client.post(
        f"/api/v1/investigations/{listed['id']}/split", json={"alert_ids": [alert_id]}
    )
    assert split.status_code == 400
    assert "every alert" in split.json()["error"]
    merge = client.post(
        f"/api/v1/investigations/{listed['id']}/merge", json={"investigations": [listed["id"]]}
    )
    assert merge.status_code == 400


def test_cli_list_show_close(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "investigations"]
    listed = runner.invoke(cli, [*base, "list", "--json"])
    assert listed.exit_code == 0, listed.output
    inv = json.loads(listed.output.splitlines()[0])["id"]
    table = runner.invoke(cli, [*base, "list", "--status", "closed"])
    assert table.output.strip() == "no investigations"
    shown = runner.invoke(cli, [*base, "show", inv])
    assert "timeline:" in shown.output
    assert "evidence" in shown.output
    closed = runner.invoke(cli, [*base, "close", inv, "--disposition", "benign", "--actor", "ana"])
    assert closed.output.strip() == f"closed {inv} as benign (1 alerts)"
    as_json = json.loads(runner.invoke(cli, [*base, "show", inv, "--json"]).output)
    assert as_json["status"] == "closed"
    assert as_json["history"][-1]["actor"] == "ana"
    missing = runner.invoke(cli, [*base, "show", "inv-nope"])
    assert missing.exit_code == 1
    assert "hubsight investigations list" in missing.output


def test_cli_reopen_gives_back_the_alerts_close_closed_and_records_them(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "investigations"]
    inv = json.loads(runner.invoke(cli, [*base, "list", "--json"]).output.splitlines()[0])["id"]
    not_closed = runner.invoke(cli, [*base, "reopen", inv])
    assert not_closed.exit_code == 2
    assert f"error: investigation {inv} is not closed" in not_closed.output
    runner.invoke(cli, [*base, "close", inv, "--disposition", "malicious"])
    (alert,) = json.loads(runner.invoke(cli, [*base, "show", inv, "--json"]).output)["alerts"]
    assert alert["status"] == "closed"
    reopened = runner.invoke(cli, [*base, "reopen", inv, "--status", "investigating"])
    assert reopened.exit_code == 0, reopened.output
    assert reopened.output.strip() == (
        f"reopened {inv} as investigating; 1 alert(s) it had closed reopened: {alert['id']}"
    )
    (again,) = json.loads(runner.invoke(cli, [*base, "show", inv, "--json"]).output)["alerts"]
    assert (again["status"], again["disposition"]) == ("open", None)
    trail = runner.invoke(cli, ["--data-dir", str(data_dir), "audit", "--json"]).output
    entries = [json.loads(line) for line in trail.splitlines()]
    moves = [
        (e["details"].get("alerts_closed"), e["details"].get("alerts_reopened")) for e in entries
    ]
    assert sorted(moves, key=str) == sorted([([alert["id"]], None), (None, [alert["id"]])], key=str)


def test_an_alert_is_assigned_only_to_an_account_and_unassigned_with_empty(
    client: TestClient,
) -> None:
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    url = f"/api/v1/alerts/{alert_id}"
    wrong = client.patch(url, json={"assignee": "mallory"})
    assert wrong.status_code == 400
    assert ("mallory" in wrong.json()["error"], "ana" in wrong.json()["hint"]) == (True, True)
    assert client.get(url).json()["assignee"] is None
    assert client.patch(url, json={"assignee": "ana"}).json()["assignee"] == "ana"
    freed = client.patch(url, json={"assignee": ""}).json()
    assert freed["assignee"] is None
    assert freed["history"][-1]["detail"] == "ana -> (none)"
    # Absent stays as it is; empty on an unassigned alert changes nothing and notes nothing.
    assert client.patch(url, json={"assignee": ""}).json()["history"] == freed["history"]
    assert client.patch(url, json={"comment": "x" * 10_000}).status_code == 200
    too_long = client.patch(url, json={"comment": "x" * 10_001})
    assert too_long.status_code == 422


def test_alerts_are_listed_by_assignee(client: TestClient) -> None:
    alert_id = client.get("/api/v1/alerts").json()[0]["id"]
    assert client.get("/api/v1/alerts", params={"assignee": "ana"}).json() == []
    client.patch(f"/api/v1/alerts/{alert_id}", json={"assignee": "ana"})
    mine = client.get("/api/v1/alerts", params={"assignee": "ana"}).json()
    assert [a["id"] for a in mine] == [alert_id]
    assert client.get("/api/v1/alerts", params={"assignee": "an"}).json() == []
    assert len(client.get("/api/v1/alerts", params={"assignee": ""}).json()) == 1


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/investigations"])
@pytest.mark.parametrize("limit", ["0", "1001", "5000", "-1", "many"])
def test_a_list_limit_out_of_range_is_a_422_naming_it(
    client: TestClient, path: str, limit: str
) -> None:
    # It was clamped without a word: 5,000 asked, 1,000 given.
    refused = client.get(path, params={"limit": limit})
    assert refused.status_code == 422
    assert [p["loc"] for p in refused.json()["detail"]] == [["query", "limit"]]


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/investigations"])
def test_a_list_limit_in_range_is_honoured(client: TestClient, path: str) -> None:
    assert len(client.get(path, params={"limit": 1000}).json()) == 1
    assert client.get(path, params={"limit": 1}).status_code == 200


@pytest.mark.parametrize("command", ["alerts", "investigations"])
def test_the_cli_lists_refuse_a_limit_below_1_and_honour_one_over_1000(
    data_dir: Path, command: str
) -> None:
    # The command line reads the database itself: no page cap to clamp to, so a large --limit
    # is given whole, and one below 1 is a usage error naming the option.
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), command, "list", "--json"]
    zero = runner.invoke(cli, [*base, "--limit", "0"])
    assert zero.exit_code == 2
    assert "Invalid value for '--limit': 0 is not in the range x>=1." in zero.output
    many = runner.invoke(cli, [*base, "--limit", "5000"])
    assert many.exit_code == 0, many.output
    assert len(many.output.splitlines()) == 1
