"""Alerts through the REST routes and the CLI: list, detail with evidence links, triage."""

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
from hubsight.web.detect_routes import router


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding the alert of one brute force that succeeded."""
    rule = build_rule(BruteForceSuccess, {})
    engine = DetectionEngine(DetectDB.in_dir(tmp_path), [rule], options=EngineOptions())
    (example,) = [e for e in BruteForceSuccess.examples() if e.fires][:1]
    assert engine.process(example.events)
    engine.close()
    return tmp_path


@pytest.fixture
def client(data_dir: Path) -> TestClient:
    app = FastAPI()
    app.state.detect_db = DetectDB.in_dir(data_dir)
    app.state.data_dir = data_dir
    app.include_router(router)
    return TestClient(app)


def test_list_detail_and_triage(client: TestClient) -> None:
    listed = client.get("/api/v1/alerts").json()
    assert [a["rule_id"] for a in listed] == ["auth.brute_force_success"]
    alert_id = listed[0]["id"]
    detail = client.get(f"/api/v1/alerts/{alert_id}").json()
    assert len(detail["evidence"]) == 11
    assert detail["evidence"][0]["context_url"].startswith("/api/v1/events/")
    assert detail["runbook"]
    changed = client.patch(
        f"/api/v1/alerts/{alert_id}",
        json={"status": "investigating", "assignee": "ana", "comment": "calling the user"},
    ).json()
    assert (changed["status"], changed["assignee"]) == ("investigating", "ana")
    assert [h["action"] for h in changed["history"]] == ["status", "assignee", "comment"]
    assert client.get("/api/v1/alerts", params={"status": "open"}).json() == []
    bad = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "done"})
    assert bad.status_code == 422
    assert client.get("/api/v1/alerts/nope").status_code == 404


def test_rule_settings_round_trip(client: TestClient) -> None:
    rule = "auth.brute_force"
    assert (
        client.put(f"/api/v1/rules/{rule}/enabled", json={"enabled": False}).json()["enabled"]
        is False
    )
    tuned = client.put(f"/api/v1/rules/{rule}/thresholds", json={"count": 25}).json()
    assert tuned["thresholds"]["count"] == 25
    wrong = client.put(f"/api/v1/rules/{rule}/thresholds", json={"cont": 25})
    assert wrong.status_code == 400
    assert (wrong.json()["field"], "cont" in wrong.json()["error"]) == ("cont", True)
    assert wrong.json()["hint"].startswith("valid keys: ")
    # A refused value names its setting and says what the setting takes, from the schema.
    schema = client.get("/api/v1/rules").json()
    (doc,) = [r for r in schema if r["id"] == rule]
    assert doc["settings_schema"]["dedup_minutes"] == {
        "default": 60,
        "minimum": 1,
        "maximum": 5256000,
        "title": "Dedup Minutes",
        "type": "integer",
    }
    for value in (0, -1, "many", None, 2.5, 5256001):
        refused = client.put(f"/api/v1/rules/{rule}/thresholds", json={"dedup_minutes": value})
        assert refused.status_code == 400, value
        assert refused.json()["field"] == "dedup_minutes"
        assert refused.json()["hint"] == "a whole number from 1 up to 5256000 (default 60)"
    edge = client.put(f"/api/v1/rules/{rule}/thresholds", json={"dedup_minutes": 1})
    assert edge.json()["thresholds"]["dedup_minutes"] == 1
    # A count or window of 0 was taken before; the refusal names the setting, value and range.
    for setting in ("count", "window_minutes"):
        zero = client.put(f"/api/v1/rules/{rule}/thresholds", json={setting: 0})
        assert zero.status_code == 400
        assert f"{setting} = 0: Input should be greater than or equal to 1" in zero.json()["error"]
        assert zero.json()["hint"].startswith("a whole number from 1 ")
        one = client.put(f"/api/v1/rules/{rule}/thresholds", json={setting: 1})
        assert one.json()["thresholds"][setting] == 1
    infinite = client.put(
        "/api/v1/rules/auth.impossible_travel/thresholds",
        content=b'{"max_speed_kmh": Infinity}',
        headers={"content-type": "application/json"},
    )
    assert (infinite.status_code, infinite.json()["field"]) == (400, "max_speed_kmh")
    spray = client.put(
        "/api/v1/rules/auth.password_spray/thresholds", json={"known_ip_share": 1.01}
    ).json()
    assert (spray["field"], spray["hint"]) == (
        "known_ip_share",
        "a number over 0 up to 1 (default 0.5)",
    )
    listed = client.put(
        "/api/v1/rules/auth.legacy_protocol/thresholds", json={"client_apps": ["IMAP4", 7]}
    ).json()
    assert listed["field"] == "client_apps"
    assert listed["hint"].startswith("a list, one per line (default Authenticated SMTP, ")
    assert client.put(f"/api/v1/rules/{rule}/thresholds", json={"count": 25}).status_code == 200
    excepted = client.put(
        f"/api/v1/rules/{rule}/exceptions", json={"ips": ["10.0.0.0/8"], "users": ["svc@x.com"]}
    ).json()
    assert excepted["exceptions"]["ips"] == ["10.0.0.0/8"]
    bad_ip = client.put(f"/api/v1/rules/{rule}/exceptions", json={"ips": ["not-an-ip"]})
    assert (bad_ip.status_code, bad_ip.json()["field"]) == (400, "ips")
    assert client.put("/api/v1/rules/no.such/enabled", json={"enabled": True}).status_code == 404


def test_an_imported_rule_is_not_the_apis_and_the_refusal_says_whose_it_is(
    client: TestClient,
) -> None:
    """The API switches and tunes shipped rules only; its 404 hinted `hubsight rules list`,
    which lists imported Sigma rules too, so the hint sent the reader round in a circle."""
    rule = "sigma.5b1f0a52-5a8e-4c8b-9f3e-2b0c6d7e8f90"
    for path, body in (("enabled", {"enabled": False}), ("thresholds", {}), ("exceptions", {})):
        refused = client.put(f"/api/v1/rules/{rule}/{path}", json=body)
        assert refused.status_code == 404, refused.text
        assert refused.json() == {
            "error": f"no built-in or shipped rule {rule!r}: the API lists and tunes those only",
            "hint": f"switch an imported Sigma rule on the server: hubsight rules enable|disable "
            f"{rule}",
        }
    # A shipped id mistyped keeps the general answer.
    typo = client.put("/api/v1/rules/auth.brute_forse/enabled", json={"enabled": False})
    assert typo.json()["hint"] == "list rule ids with `hubsight rules list`"


def test_thresholds_and_exceptions_are_saved_together_or_not_at_all(client: TestClient) -> None:
    rule = "auth.brute_force"
    url = f"/api/v1/rules/{rule}/tuning"

    def current() -> tuple[int, list[str]]:
        (doc,) = [r for r in client.get("/api/v1/rules").json() if r["id"] == rule]
        return doc["thresholds"]["count"], doc["exceptions"]["ips"]

    # A valid threshold with a refused exception (the second part) changes neither.
    bad_ip = client.put(url, json={"thresholds": {"count": 25}, "exceptions": {"ips": ["x"]}})
    assert (bad_ip.status_code, bad_ip.json()["field"]) == (400, "exceptions.ips")
    assert current() == (10, [])
    bad_count = client.put(
        url, json={"thresholds": {"count": 0}, "exceptions": {"ips": ["10.0.0.0/8"]}}
    )
    assert (bad_count.status_code, bad_count.json()["field"]) == (400, "thresholds.count")
    assert "count = 0" in bad_count.json()["error"]
    assert current() == (10, [])
    both = client.put(
        url, json={"thresholds": {"count": 25}, "exceptions": {"ips": ["10.0.0.0/8"]}}
    )
    assert both.status_code == 200
    assert current() == (25, ["10.0.0.0/8"])
    # Both parts are required, and nothing else is taken.
    assert client.put(url, json={"thresholds": {"count": 3}}).status_code == 422
    extra = {"thresholds": {}, "exceptions": {}, "enabled": False}
    assert client.put(url, json=extra).status_code == 422
    assert current() == (25, ["10.0.0.0/8"])
    missing = client.put("/api/v1/rules/no.such/tuning", json={"thresholds": {}, "exceptions": {}})
    assert missing.status_code == 404


def test_user_timeline(client: TestClient) -> None:
    timeline = client.get(
        "/api/v1/users/Adele.Vance@contoso.com/timeline", params={"days": 3650}
    ).json()
    assert timeline["user"] == "adele.vance@contoso.com"
    assert [a["rule_id"] for a in timeline["alerts"]] == ["auth.brute_force_success"]
    assert timeline["signins_by_country"] == {"DE": 1}


def test_cli_list_show_close(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir)]
    listed = runner.invoke(cli, [*base, "alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    alert = json.loads(listed.output.splitlines()[0])
    shown = runner.invoke(cli, [*base, "alerts", "show", alert["id"]])
    assert "signed in after 10 password failures" in shown.output
    closed = runner.invoke(
        cli, [*base, "alerts", "close", alert["id"], "--disposition", "malicious", "--actor", "ana"]
    )
    assert closed.exit_code == 0, closed.output
    again = json.loads(runner.invoke(cli, [*base, "alerts", "show", alert["id"], "--json"]).output)
    assert (again["status"], again["disposition"]) == ("closed", "malicious")
    missing = runner.invoke(cli, [*base, "alerts", "show", "nope"])
    assert missing.exit_code == 1
    assert "no alert with id" in missing.output
