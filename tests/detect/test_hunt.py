"""``rules hunt``: a Sigma rule over stored events gives the alerts the live engine would raise.

The oracle is the engine itself fed every stored event (not only the hunted log sets), so the
hunt's narrowing by log set and window must lose nothing and add nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.detect.base import Rule, example_event
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.hunt import hunt, hunt_leql, hunt_rules
from hubsight.detect.ruleset import build_rule, rule_class
from hubsight.detect.sigma.leql import rule_leql
from hubsight.errors import ConfigError, NotFoundError
from hubsight.parsing.event import Event, LogSet
from hubsight.query.parser import parse
from hubsight.query.search import SearchRequest, search
from hubsight.store.embedded import EmbeddedStore
from hubsight.web.hunt_routes import router

A, B = "adele.vance@contoso.com", "megan.bowen@contoso.com"
START = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
FAILED = """title: Failed password
id: 0d4e5f60-7182-4a93-b4c5-d6e7f8091a2b
level: medium
tags: [attack.t1110]
logsource: {product: azure, service: signinlogs}
detection:
  selection: {ResultType: 50126}
  condition: selection
"""
# The same rule standing alone (a correlation's base rule raises no alerts of its own).
SOLO_FROM, SOLO = "0d4e5f60-7182-4a93-b4c5-d6e7f8091a2b", "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
BURST = """---
title: Failed password burst
id: 7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b
level: high
tags: [attack.t1110]
correlation:
  type: event_count
  rules: [0d4e5f60-7182-4a93-b4c5-d6e7f8091a2b]
  group-by: [UserPrincipalName]
  timespan: 10m
  condition: {gte: 3}
"""


def _signin(minute: float, user: str, code: str, offset: int) -> Event:
    record = {
        "category": "SignInLogs",
        "resultType": code,
        "properties": {"userPrincipalName": user, "ipAddress": "203.0.113.10"},
    }
    return example_event(
        LogSet.INGRESS_AUTHENTICATION, minute, offset=offset, category="SignInLogs", user=user,
        source_ip="203.0.113.10", result="SUCCESS" if code == "0" else "FAILED_BAD_PASSWORD",
        raw=msgspec.json.encode(record),
    )  # fmt: skip


def _activity(minute: float, offset: int) -> Event:
    record = {"category": "Administrative", "resultType": "50126", "operationName": "x"}
    return example_event(
        LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, minute, offset=offset, category="Administrative",
        raw=msgspec.json.encode(record),
    )  # fmt: skip


def _events() -> list[Event]:
    plan: list[tuple[float, str, str]] = [
        # A: a burst of four failures, then two more 3 hours later; B: failures far apart.
        (0, A, "50126"), (1, A, "50126"), (2, A, "50126"), (4, A, "50126"),
        (180, A, "50126"), (181, A, "50126"), (5, B, "50126"), (65, B, "0"), (200, B, "50126"),
        # The edges of the hunted window [0 min, 300 min): at 300 it is outside.
        (300, B, "50126"), (-1, B, "50126"),
    ]  # fmt: skip
    events = [_signin(m, u, c, i) for i, (m, u, c) in enumerate(plan)]
    return events + [_activity(m, 100 + m) for m in (3, 4, 5)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the events; closed, so each test opens it itself."""
    path = tmp_path_factory.mktemp("hunt")
    store = EmbeddedStore(path)
    store.write(_events())
    store.close()
    (path / "rules").mkdir()
    (path / "rules" / "burst.yml").write_text(FAILED + BURST)
    (path / "rules" / "single.yml").write_text(FAILED.replace(SOLO_FROM, SOLO))
    return path


@pytest.fixture
def store(data_dir: Path) -> Iterator[EmbeddedStore]:
    """The data directory's store, open for one test."""
    opened = EmbeddedStore(data_dir)
    try:
        yield opened
    finally:
        opened.close()


def _engine_alerts(rules: Sequence[Rule[Any]], events: list[Event]) -> list[tuple[str, str, int]]:
    """What the live engine raises when handed every event in the window, in order."""
    engine = DetectionEngine(
        DetectDB(Path(":memory:")), rules, options=EngineOptions(persist=False)
    )
    final = {}
    inside = sorted(
        (e for e in events if START <= e.timestamp < START + timedelta(minutes=300)),
        key=lambda e: e.timestamp,
    )
    for alert in engine.process(inside):
        final[alert.id] = alert
    return sorted(
        ((a.rule_id, a.first_event_time.isoformat(), len(a.evidence)) for a in final.values()),
    )


def test_single_rule_hunt_gives_the_engines_alerts(store: EmbeddedStore, data_dir: Path) -> None:
    rules = [r for r in hunt_rules(data_dir, f"sigma.{SOLO}")]
    result = hunt(store, rules, START, START + timedelta(minutes=300))
    # Sign-ins only (the activity events with the same resultType are not read), edges kept.
    assert result.events_read == 9
    assert result.matched_events == 8
    got = sorted(
        (a.rule_id, a.first_event_time.isoformat(), len(a.evidence)) for a in result.alerts
    )
    assert got == _engine_alerts(rules, _events())
    assert len(got) == 4  # A at 0 min and at 180 min, B at 5 and at 200 (one per user-hour)
    doc = result.to_json()
    assert doc["alert_count"] == 4
    assert doc["top_users"] == [[A, 2], [B, 2]]


def test_correlation_hunt_replays_its_base_rules(store: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "burst.yml"
    path.write_text(FAILED + BURST)
    rules = hunt_rules(tmp_path, str(path))
    result = hunt(store, rules, START, START + timedelta(minutes=300))
    burst = [a for a in result.alerts if a.rule_id == "sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"]
    assert [(a.user, len(a.evidence)) for a in burst] == [(A, 4)]
    assert sorted(
        (a.rule_id, a.first_event_time.isoformat(), len(a.evidence)) for a in result.alerts
    ) == _engine_alerts(rules, _events())


def test_a_correlation_hunted_alone_counts_its_base_rules_matches(
    store: EmbeddedStore, data_dir: Path
) -> None:
    # By id the correlation comes without its base rule: its alerts came "from 0 matching events".
    rules = hunt_rules(data_dir, "sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b")
    assert [r.meta.id for r in rules] == ["sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"]
    result = hunt(store, rules, START, START + timedelta(minutes=300))
    assert [(a.user, len(a.evidence)) for a in result.alerts] == [(A, 4)]
    # The failures inside the window: A's six and B's two (not the success, nor the edges).
    assert result.matched_events == 8


def test_a_window_without_the_burst_raises_no_correlation(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    path = tmp_path / "burst.yml"
    path.write_text(FAILED + BURST)
    rules = hunt_rules(tmp_path, str(path))
    # From minute 2 on, A has only two failures within 10 minutes: below the threshold of 3.
    result = hunt(store, rules, START + timedelta(minutes=2), START + timedelta(minutes=170))
    assert [a.rule_id for a in result.alerts if "7e8f" in a.rule_id] == []


def test_what_cannot_be_hunted_says_why(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        NotFoundError, match="no Sigma rule file, shipped rule or imported Sigma rule"
    ):
        hunt_rules(data_dir, "sigma.nope")
    bad = tmp_path / "bad.yml"
    bad.write_text(FAILED.replace("signinlogs", "nosuchservice"))
    with pytest.raises(ConfigError, match=r"document 1: .*nosuchservice"):
        hunt_rules(data_dir, str(bad))


def test_a_window_that_ends_before_it_starts_is_refused(store: EmbeddedStore) -> None:
    with pytest.raises(ConfigError, match="is not before its end"):
        hunt(store, [], START, START)


def test_cli_hunts_an_imported_rule_as_json(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "rules", "hunt", "sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b",
         "--from", "2026-03-02T09:00:00Z", "--to", "2026-03-02T14:00:00Z", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["alert_count"] == 1
    assert document["alerts"][0]["user"] == A
    assert document["alerts"][0]["events"] == 4
    table = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "rules", "hunt", "sigma.nope", "--last", "90d"]
    )
    assert table.exit_code == 1
    assert (
        "error: no Sigma rule file, shipped rule or imported Sigma rule named 'sigma.nope'"
        in table.stderr
    )


def test_the_api_hunts_by_id_or_by_text(store: EmbeddedStore, data_dir: Path) -> None:
    app = FastAPI()
    app.state.store = store
    app.state.data_dir = data_dir
    app.include_router(router)
    window = {"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T14:00:00Z"}
    with TestClient(app) as client:
        by_id = client.post("/api/v1/rules/hunt", json={"rule": f"sigma.{SOLO}", **window})
        assert by_id.status_code == 200
        assert by_id.json()["alert_count"] == 4
        by_text = client.post("/api/v1/rules/hunt", json={"sigma": FAILED + BURST, **window})
        assert by_text.json()["by_rule"] == {"sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b": 1}
        both = client.post("/api/v1/rules/hunt", json={"rule": "x", "sigma": FAILED})
        assert (both.status_code, both.json()["error"]) == (
            400,
            "give either rule (an id) or sigma (a rule's text)",
        )
        missing = client.post("/api/v1/rules/hunt", json={"rule": "sigma.nope"})
        assert missing.status_code == 404
        leql = client.get(f"/api/v1/rules/sigma.{SOLO}/leql").json()
        assert leql["leql"] == hunt_leql(data_dir, f"sigma.{SOLO}")
        assert client.get("/api/v1/rules/sigma.nope/leql").status_code == 404
        # A file on the server is hunted only by the CLI: the API would let accounts read files.
        (data_dir / "rule.yml").write_text(FAILED + BURST, "utf-8")
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(data_dir)
            by_path = client.post("/api/v1/rules/hunt", json={"rule": "rule.yml", **window})
            assert by_path.status_code == 404
            assert client.get("/api/v1/rules/rule.yml/leql").status_code == 404


def test_a_rules_leql_finds_the_events_it_matches(store: EmbeddedStore, data_dir: Path) -> None:
    leql = hunt_leql(data_dir, f"sigma.{SOLO}")
    assert leql.startswith('where(category IIN ["adfssigninlogs"')
    assert "resultType = 50126" in leql
    found = search(
        store,
        SearchRequest(query=leql, start="2026-03-02T09:00:00Z", end="2026-03-02T14:00:00Z"),
    )
    rules = hunt_rules(data_dir, f"sigma.{SOLO}")
    hunted = hunt(store, rules, START, START + timedelta(minutes=300))
    assert len(found.events) == hunted.matched_events == 8
    with pytest.raises(ConfigError, match="a correlation has no LEQL form"):
        hunt_leql(data_dir, "sigma.7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b")


def test_sigma_modifiers_become_leql_operators(tmp_path: Path) -> None:
    path = tmp_path / "mods.yml"
    path.write_text(
        FAILED.replace(
            "selection: {ResultType: 50126}",
            "selection: {AppDisplayName|contains: Office, "
            "UserPrincipalName|startswith: [adm, root]}\n  filter: {IPAddress|cidr: 10.0.0.0/8}",
        ).replace("condition: selection", "condition: selection and not filter")
    )
    leql = rule_leql(path)
    assert leql.endswith(
        '(properties.appDisplayName ICONTAINS "Office" AND (properties.userPrincipalName '
        'ISTARTS-WITH "adm" OR properties.userPrincipalName ISTARTS-WITH "root") '
        "AND NOT properties.ipAddress = IP(10.0.0.0/8))))"
    )
    parse(leql)  # LEQL the search accepts
    ends = tmp_path / "ends.yml"
    ends.write_text(
        FAILED.replace("{ResultType: 50126}", "{AppDisplayName|endswith: Off/ice, AppId: 'a*b'}")
    )
    assert rule_leql(ends).endswith(
        "(properties.appDisplayName = /Off\\/ice$/i AND properties.appId = /^a.*b$/i)))"
    )
    parse(rule_leql(ends))
    with pytest.raises(ConfigError, match=r"\(document 2\) has no LEQL form"):
        rule_leql(ends, 2)


def test_a_shipped_rule_is_hunted_by_its_id(tmp_path: Path) -> None:
    # entra.break_glass_signin: sign-ins of accounts named breakglass*, emergency-access*, ...
    events = [
        _signin(10, "breakglass01@contoso.com", "0", 0),
        _signin(11, "breakglass01@contoso.com", "50126", 1),
        _signin(12, A, "0", 2),
        _signin(400, "emergency-access@contoso.com", "0", 3),  # after the window
    ]
    store = EmbeddedStore(tmp_path)
    try:
        store.write(events)
        rules = hunt_rules(tmp_path, "entra.break_glass_signin")
        result = hunt(store, rules, START, START + timedelta(minutes=300))
    finally:
        store.close()
    assert result.rules == ["entra.break_glass_signin"]
    assert (result.events_read, result.matched_events) == (3, 2)
    assert [(a.rule_id, a.user, len(a.evidence)) for a in result.alerts] == [
        ("entra.break_glass_signin", "breakglass01@contoso.com", 2)
    ]
    assert "breakglass" in hunt_leql(tmp_path, "entra.break_glass_signin")
    with pytest.raises(NotFoundError, match="shipped rule"):
        hunt_rules(tmp_path, "entra.no_such_rule")


def test_cli_hunts_a_shipped_rule(data_dir: Path) -> None:
    out = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "rules", "hunt", "entra.break_glass_signin",
         "--from", "2026-03-02T08:00:00Z", "--to", "2026-03-02T15:00:00Z", "--format", "json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["rules"] == ["entra.break_glass_signin"]
    assert (doc["events_read"], doc["alert_count"]) == (11, 0)


def test_a_built_in_rule_judging_each_event_alone_is_hunted_by_its_id(tmp_path: Path) -> None:
    # The NSG rules were Sigma (hunted by id) before they were Python: they still are.
    rule_id = "network.nsg_rule_management_port"
    examples = rule_class(rule_id).examples()
    events = [event for example in examples for event in example.events]
    fired = sum(len(example.events) for example in examples if example.fires)
    store = EmbeddedStore(tmp_path)
    try:
        store.write(events)
        rules = hunt_rules(tmp_path, rule_id)
        result = hunt(store, rules, START - timedelta(hours=1), START + timedelta(days=1))
    finally:
        store.close()
    assert result.rules == [rule_id]
    assert (result.events_read, result.matched_events) == (len(events), fired)
    engine = DetectionEngine(
        DetectDB(Path(":memory:")), [build_rule(rule_class(rule_id), {})],
        options=EngineOptions(persist=False),
    )  # fmt: skip
    expected = sorted((a.title, str(a.severity), len(a.evidence)) for a in engine.process(events))
    assert sorted((a.title, str(a.severity), len(a.evidence)) for a in result.alerts) == expected
    assert len(result.alerts) > 1
    with pytest.raises(ConfigError, match="has no LEQL form") as refused:
        hunt_leql(tmp_path, rule_id)
    assert refused.value.hint == f"hunt it instead: hubsight rules hunt {rule_id}"
    # A built-in rule with windows or baselines is still refused, saying why.
    with pytest.raises(ConfigError, match="can be neither hunted nor shown as LEQL"):
        hunt_rules(tmp_path, "auth.password_spray")


def test_cli_table_names_each_alerts_user_and_address_and_the_most_alerted(data_dir: Path) -> None:
    """The README: each alert with its rule, first event, user and address, then the users and
    addresses with most alerts (the table showed neither)."""
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "rules", "hunt", f"sigma.{SOLO}",
         "--from", "2026-03-02T09:00:00Z", "--to", "2026-03-02T14:00:00Z"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("FIRST EVENT"))
    assert header.split()[-3:] == ["USER", "ADDRESS", "TITLE"]
    rows = [line for line in lines if line.startswith("2026-03-02")]
    assert len(rows) == 4
    assert all("203.0.113.10" in row for row in rows)
    assert sum(A in row for row in rows) == 2
    assert sum(B in row for row in rows) == 2
    assert f"most alerts, users: {A} (2), {B} (2)" in lines
    assert "most alerts, addresses: 203.0.113.10 (4)" in lines
