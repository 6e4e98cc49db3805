"""Sigma rules: loading report, field mapping onto raw Azure records, import command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.base import example_event
from hubsight.detect.sigma import load_sigma_rules
from hubsight.parsing.event import Event, LogSet

RULES = Path(__file__).parent / "sigma_rules"


def _signin(record: dict[str, object]) -> Event:
    return example_event(
        LogSet.INGRESS_AUTHENTICATION,
        category="SignInLogs",
        user="eve@contoso.com",
        raw=msgspec.json.encode(record),
    )


def test_load_report_says_why() -> None:
    loads = {p.path.name: p for p in load_sigma_rules(RULES)}
    assert loads["disabled_account.yml"].rule is not None
    assert loads["federation.yml"].rule is not None
    assert loads["windows_only.yml"].reason == "logsource product 'windows' is not azure"
    assert loads["broken.yml"].reason.startswith("not a valid Sigma rule")
    rule = loads["disabled_account.yml"].rule
    assert rule is not None
    assert rule.meta.technique == "T1078.004"
    assert rule.meta.id == "sigma.0b9a1b3c-5a3e-4c0e-9d3f-6f7f7e0b2a11"


def test_condition_runs_on_the_raw_record() -> None:
    rule = {p.path.name: p for p in load_sigma_rules(RULES)}["disabled_account.yml"].rule
    assert rule is not None
    hit = _signin({"resultType": "50057", "properties": {"appDisplayName": "Office 365"}})
    filtered = _signin({"resultType": "50057", "properties": {"appDisplayName": "Test app"}})
    other = _signin({"resultType": "0", "properties": {"appDisplayName": "Office 365"}})
    assert [f.user for f in rule.evaluate(hit, None)] == ["eve@contoso.com"]  # type: ignore[arg-type]
    assert list(rule.evaluate(filtered, None)) == []  # type: ignore[arg-type]
    assert list(rule.evaluate(other, None)) == []  # type: ignore[arg-type]


def test_import_prints_one_line_per_file_and_keeps_loaded_rules(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(RULES, folder)
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "data"), "rules", "import", "sigma", str(folder), "--json"],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert {Path(d["path"]).name: d["loaded"] for d in lines} == {
        "broken.yml": False,
        "disabled_account.yml": True,
        "federation.yml": True,
        "single_factor.yml": True,
        "windows_only.yml": False,
    }
    assert set(lines[0]) == {"path", "loaded", "reason", "rule_id"}
    kept = sorted(p.name for p in (tmp_path / "data" / "rules" / "sigma").iterdir())
    assert kept == ["disabled_account.yml", "federation.yml", "single_factor.yml"]


def test_status_is_derived_from_the_normalized_result() -> None:
    rule = {p.path.name: p for p in load_sigma_rules(RULES)}["single_factor.yml"].rule
    assert rule is not None
    record = {"properties": {"authenticationRequirement": "singleFactorAuthentication"}}
    success = _signin(record)
    failure = _signin(record)
    failure.result = "FAILED_BAD_PASSWORD"
    success.result = "SUCCESS"
    assert len(list(rule.evaluate(success, None))) == 1  # type: ignore[arg-type]
    assert list(rule.evaluate(failure, None)) == []  # type: ignore[arg-type]
