"""Case retention through the API, the Settings page and the CLI: set, shown, audited, refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.expiry import DAY_S
from hubsight.detect.investigations import InvestigationStore, Triage
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.parsing.event import LogSet
from hubsight.service import Service
from hubsight.store.audit import AuditFilter, AuditLog
from hubsight.store.catalog import Catalog
from hubsight.store.retention import CASES
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH

URL = "/api/v1/retention/alerts"


@pytest.fixture
def engine(data_dir: Path) -> Iterator[DetectionEngine]:
    """An engine that raised one alert, in its investigation."""
    built = DetectionEngine(
        DetectDB.in_dir(data_dir), [build_rule(BruteForceSuccess, {})], options=EngineOptions()
    )
    assert built.process(next(e for e in BruteForceSuccess.examples() if e.fires).events)
    yield built
    built.close()


@pytest.fixture
def app(service: Service, data_dir: Path, engine: DetectionEngine) -> FastAPI:
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("root", "admin passphrase!", "admin")
    users.create("ana", "analyst passphrase", "analyst")
    built = create_app(service, auth=ConsoleAuth(users))
    built.state.detect_db = engine.db
    return built


def _as(app: FastAPI, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.auth.users.issue_token(name, 't')}"}


def test_no_log_set_is_spelt_like_the_cases() -> None:
    assert CASES not in {s.value.lower() for s in LogSet}


def test_api_sets_shows_and_audits_case_retention(
    app: FastAPI, data_dir: Path, engine: DetectionEngine
) -> None:
    client = TestClient(app)
    admin, analyst = _as(app, "root"), _as(app, "ana")
    shown = client.get(URL, headers=analyst).json()
    assert {k: shown[k] for k in ("name", "days", "alerts", "investigations")} == {
        "name": "alerts",
        "days": None,
        "alerts": 1,
        "investigations": 1,
    }
    assert shown["bytes_on_disk"] > 0
    # The log sets' list is as it was: one row per log set, nothing else.
    rows = client.get("/api/v1/retention", headers=analyst).json()
    assert sorted(r["log_set"] for r in rows) == sorted(s.value for s in LogSet)
    assert client.put(URL, json={"days": 365}, headers=analyst).status_code == 403
    for bad in (-5, 0, 36_501, "soon", 2.5, True):
        refused = client.put(URL, json={"days": bad}, headers=admin)
        assert refused.status_code in (400, 422), bad
        if refused.status_code == 400:
            assert "or `off` to keep them for ever" in refused.json()["hint"], bad
    assert Catalog(data_dir).case_retention() is None
    assert client.put(URL, json={"days": 365}, headers=admin).json() == {
        "name": "alerts",
        "days": 365,
    }
    assert client.get(URL, headers=analyst).json()["days"] == 365
    assert client.put(URL, json={"days": "off"}, headers=admin).json()["days"] is None
    assert client.put(URL, json={"days": 30}, headers=admin).json()["days"] == 30
    # A log set is set as before, beside it.
    assert client.put("/api/v1/retention/Unparsed Data", json={"days": 9}, headers=admin).is_success
    trail = AuditLog(data_dir).entries(AuditFilter(action="retention.update"))
    changes = [(e.target, e.details["changes"]["days"]) for e in trail if e.outcome == "ok"]
    assert sorted(changes, key=str) == sorted(
        [
            ("alerts", [None, 365]),
            ("alerts", [365, None]),
            ("alerts", [None, 30]),
            ("Unparsed Data", [14, 9]),
        ],
        key=str,
    )
    # Applied: the closed case goes, the audit trail stays.
    (inv,) = [i.id for i in InvestigationStore(engine.db).find()]
    InvestigationStore(engine.db).update(inv, Triage(status="closed"), actor="ana")
    engine.expire_cases(30, time.time() + 31 * DAY_S)
    after = client.get(URL, headers=analyst).json()
    assert (after["alerts"], after["investigations"]) == (0, 0)
    assert len(AuditLog(data_dir).entries(AuditFilter(action="retention.update"))) == len(trail)


def test_settings_page_has_a_row_for_closed_cases(app: FastAPI) -> None:
    client = TestClient(app)
    page = client.get("/settings", headers=_as(app, "root")).text
    row = page[page.index('<tr data-log-set="alerts"') :]
    row = row[: row.index("</tr>")]
    assert "Closed alerts and investigations" in row
    assert '<form class="retention" data-log-set="alerts">' in row
    assert 'placeholder="for ever"' in row
    assert "1 alert, 1 investigation" in row
    assert "KB" in row
    client.put(URL, json={"days": 400}, headers=_as(app, "root"))
    seen = client.get("/settings", headers=_as(app, "ana")).text
    row = seen[seen.index('<tr data-log-set="alerts"') :]
    assert "400 days after their last change" in row[: row.index("</tr>")]
    assert "<form" not in row[: row.index("</tr>")]
    # Data Collection's table is of events only.
    assert 'data-log-set="alerts"' not in client.get("/sources", headers=_as(app, "ana")).text


def test_cli_sets_and_lists_case_retention(data_dir: Path, engine: DetectionEngine) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "retention"]
    done = runner.invoke(cli, [*base, "set", "alerts", "365"])
    assert done.exit_code == 0, done.output
    # Deleted after their last change (closed, reassigned, commented on), not after closing.
    kept = "alerts: closed alerts and investigations kept 365 days after their last change"
    assert kept in done.output
    listed = runner.invoke(cli, [*base, "list", "alerts", "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.output)
    assert (doc["days"], doc["alerts"], doc["investigations"]) == (365, 1, 1)
    text = runner.invoke(cli, [*base, "list"]).output
    assert "CLOSED CASES" in text
    assert "365 days after their last change" in text
    # --json is the log sets' list, as before.
    rows = json.loads(runner.invoke(cli, [*base, "list", "--json"]).output)
    assert sorted(r["log_set"] for r in rows) == sorted(s.value for s in LogSet)
    assert runner.invoke(cli, [*base, "set", "alerts", "off"]).exit_code == 0
    assert Catalog(data_dir).case_retention() is None
    for bad in ("-5", "0", "soon", "1.5"):
        refused = runner.invoke(cli, [*base, "set", "alerts", bad])
        assert refused.exit_code == 2, bad
        assert "is not a number of days closed alerts can be kept" in refused.output
        assert "or `off` to keep them for ever" in refused.output
    # Log sets answer bad days as before, a negative one included.
    assert (
        "'soon' is not a valid integer"
        in runner.invoke(cli, [*base, "set", "Unparsed Data", "soon"]).output
    )
    negative = runner.invoke(cli, [*base, "set", "Unparsed Data", "-5"])
    assert (negative.exit_code, "from 1 to 36500" in negative.output) == (2, True)
    assert runner.invoke(cli, [*base, "list", "Unparsed Data"]).exit_code == 2
    trail = AuditLog(data_dir).entries(AuditFilter(action="retention.update"))
    assert [(e.via, e.target, e.details["changes"]) for e in reversed(trail)] == [
        ("cli", "alerts", {"days": [None, 365]}),
        ("cli", "alerts", {"days": [365, None]}),
    ]
    assert "alerts" in runner.invoke(cli, [*base, "set", "--help"]).output
