"""ATT&CK coverage: tactics x techniques of the enabled rules, and which rules are blind."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.attack import (
    TACTICS,
    TECHNIQUES,
    coverage,
    delivered,
    matrix,
    navigator_layer,
    rule_categories,
)
from hubsight.detect.base import Rule, example_event
from hubsight.detect.content import content_rules
from hubsight.detect.rules import BUILTIN_RULES
from hubsight.detect.ruleset import build_rule
from hubsight.detect.sigma import load_sigma_file
from hubsight.parsing.event import LogSet
from hubsight.store.embedded import EmbeddedStore

NOW = datetime.fromisoformat("2026-03-02T12:00:00+00:00")
RULE = """title: Sign-in from a test app
id: 3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f
tags: [attack.initial_access, attack.t1078.004]
logsource: {product: azure, service: signinlogs}
detection:
  selection: {AppDisplayName: Test}
  condition: selection
"""


def _builtin(rule_id: str) -> Rule[Any]:
    cls = next(c for c in BUILTIN_RULES if c.meta.id == rule_id)
    return build_rule(cls, {})


def test_a_rule_whose_categories_delivered_nothing_is_blind() -> None:
    spray = _builtin("auth.password_spray")
    assert "SignInLogs" in rule_categories(spray)
    (seeing,) = coverage([spray], {"signinlogs": 1})  # any case, one event is enough
    assert not seeing.blind
    (blind,) = coverage([spray], {"SignInLogs": 0, "AuditLogs": 50})
    assert blind.blind
    assert blind.categories["SignInLogs"] == 0


def _shipped(rule_id: str) -> Rule[Any]:
    cls = next(c for c in content_rules() if c.meta.id == rule_id)
    return build_rule(cls, {})


def test_shipped_sigma_rules_read_their_services_categories() -> None:
    # An Activity Log rule read Entra ID's AuditLogs and RiskyUsers (its log set's categories):
    # it looked able to fire on data it never reads.
    basic_auth = rule_categories(_shipped("automation.basic_auth_enabled"))
    assert "administrative" in basic_auth
    assert not {"auditlogs", "riskyusers", "signinlogs"} & set(basic_auth)
    (blind,) = coverage([_shipped("automation.basic_auth_enabled")], {"AuditLogs": 9})
    assert (blind.blind, blind.correlation) == (True, False)
    # A correlation reads what its base rules read, and has no LEQL form to open.
    (many,) = coverage([_shipped("entra.failed_signins_many_accounts_one_address")], {})
    assert "signinlogs" in many.categories
    assert "administrative" not in many.categories
    assert many.to_json()["correlation"] is True


def test_matrix_lists_tactics_in_order_with_their_techniques(tmp_path: Path) -> None:
    spray, brute = _builtin("auth.password_spray"), _builtin("auth.brute_force")
    path = tmp_path / "app.yml"
    path.write_text(RULE)
    (sigma,) = [load.rule for load in load_sigma_file(path) if load.rule is not None]
    assert "signinlogs" in rule_categories(sigma)
    doc = matrix(coverage([spray, brute, sigma], {"SignInLogs": 3}))
    tactics = [t["tactic"] for t in doc["tactics"]]
    assert tactics == [t for t in TACTICS if t in tactics]  # matrix order
    credential = next(t for t in doc["tactics"] if t["tactic"] == "Credential Access")
    ids = {r["id"] for tech in credential["techniques"] for r in tech["rules"]}
    assert {"auth.password_spray", "auth.brute_force"} <= ids
    assert doc["blind_rules"] == 0
    assert doc["rules"] == 3


def test_an_unknown_technique_is_listed_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "odd.yml"
    path.write_text(RULE.replace("attack.t1078.004", "attack.t1599.001"))
    (odd,) = [load.rule for load in load_sigma_file(path) if load.rule is not None]
    assert odd.meta.technique not in TECHNIQUES
    doc = matrix(coverage([odd], {}))
    assert [(u["technique"], u["id"], u["blind"]) for u in doc["unmapped"]] == [
        (odd.meta.technique, odd.meta.id, True)
    ]
    assert doc["tactics"] == []


def test_navigator_layer_scores_rules_that_see_data() -> None:
    spray, brute = _builtin("auth.password_spray"), _builtin("auth.brute_force")
    covered = coverage([spray, brute], {"SignInLogs": 4})
    layer = navigator_layer(covered)
    assert layer["domain"] == "enterprise-attack"
    assert {"attack", "navigator", "layer"} <= set(layer["versions"])
    entry = next(e for e in layer["techniques"] if e["techniqueID"] == spray.meta.technique)
    assert entry["tactic"] == "credential-access"
    assert entry["score"] >= 1
    blind = navigator_layer(coverage([spray], {}))
    (only,) = [e for e in blind["techniques"] if e["techniqueID"] == spray.meta.technique]
    assert only["score"] == 0
    assert "blind" in only["comment"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sign-ins received 23 h 59 min and 24 h 1 min before NOW, nothing else."""
    path = tmp_path_factory.mktemp("attack")
    store = EmbeddedStore(path)
    events = [
        example_event(LogSet.INGRESS_AUTHENTICATION, 0, offset=i, category="SignInLogs",
                      received_time=NOW - age, user="adele.vance@contoso.com")
        for i, age in enumerate((timedelta(hours=23, minutes=59), timedelta(hours=24, minutes=1)))
    ]  # fmt: skip
    old = NOW - timedelta(hours=25)
    audit = example_event(
        LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, 0, offset=9, category="AuditLogs", received_time=old
    )
    store.write([*events, audit])
    store.close()
    return path


def test_delivered_counts_the_last_24_hours_only(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    try:
        assert delivered(store, NOW) == {"SignInLogs": 1}
        assert delivered(store, NOW + timedelta(minutes=2)) == {}
    finally:
        store.close()


def test_cli_prints_json_and_a_navigator_layer(data_dir: Path) -> None:
    runner = CliRunner()
    doc = runner.invoke(cli, ["--data-dir", str(data_dir), "rules", "coverage", "--format", "json"])
    assert doc.exit_code == 0, doc.output
    document = json.loads(doc.stdout)
    # The stored sign-ins are days old by the wall clock: every enabled rule is blind.
    assert document["rules"] > 30
    assert document["blind_rules"] == document["rules"]
    layer = runner.invoke(
        cli, ["--data-dir", str(data_dir), "rules", "coverage", "--format", "navigator"]
    )
    assert layer.exit_code == 0
    assert json.loads(layer.stdout)["name"] == "hubsight detection coverage"
    table = runner.invoke(cli, ["--data-dir", str(data_dir), "rules", "coverage"])
    assert "BLIND" in table.stdout
    assert "enabled rules" in table.stdout
