"""``hubsight rules list | enable | disable | test``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.rules.auth_volume import BruteForce


def _run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "rules", *args])
    return result.exit_code, result.output


def test_disable_then_enable(tmp_path: Path) -> None:
    assert _run(tmp_path, "disable", "auth.legacy_protocol")[0] == 0
    listed = {d["id"]: d for d in map(json.loads, _run(tmp_path, "list", "--json")[1].splitlines())}
    assert listed["auth.legacy_protocol"]["enabled"] is False
    assert listed["auth.brute_force"]["thresholds"]["count"] == 10
    assert _run(tmp_path, "enable", "auth.legacy_protocol")[0] == 0
    listed = {d["id"]: d for d in map(json.loads, _run(tmp_path, "list", "--json")[1].splitlines())}
    assert listed["auth.legacy_protocol"]["enabled"] is True
    code, output = _run(tmp_path, "enable", "auth.nope")
    assert code == 1
    assert "no rule 'auth.nope'" in output


def test_examples_fail_loudly_when_thresholds_move(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "test", "auth.brute_force")
    assert code == 0
    assert output.count("ok  ") == len(BruteForce.examples())
    (tmp_path / "detect.toml").write_text(
        '[rules."auth.brute_force"]\nthresholds = { count = 50 }\n'
    )
    code, output = _run(tmp_path, "test", "auth.brute_force")
    assert code == 1
    assert "FAIL auth.brute_force: ten failures in nine minutes (fires)" in output


def test_an_example_counting_alerts_fails_when_it_raises_another_count(tmp_path: Path) -> None:
    """A day's lookback lets the repeat 90 days later raise a second alert: still "fires"."""
    assert _run(tmp_path, "test", "auth.unusual_flow")[0] == 0
    (tmp_path / "detect.toml").write_text(
        '[rules."auth.unusual_flow"]\nthresholds = { lookback_days = 1 }\n'
    )
    code, output = _run(tmp_path, "test", "auth.unusual_flow")
    assert code == 1
    assert "FAIL auth.unusual_flow: again as the lookback ends (fires, 1 alert)" in output
    assert "ok   auth.unusual_flow: again a second after the lookback (fires, 2 alerts)" in output


def test_an_example_grading_its_alerts_fails_when_they_are_graded_otherwise(
    tmp_path: Path,
) -> None:
    rule = "network.nsg_rule_any_source"
    code, output = _run(tmp_path, "test", rule)
    assert code == 0, output
    web = "whole NSG written with its rules inline: HTTPS from any address (low)"
    assert f"ok   {rule}: {web} (fires, low)" in output
    (tmp_path / "detect.toml").write_text(f'[rules."{rule}"]\nthresholds = {{ web_ports = [] }}\n')
    code, output = _run(tmp_path, "test", rule)
    assert code == 1
    assert f"FAIL {rule}: {web} (fires, low)" in output


def test_imported_sigma_rules_are_listed_and_switchable(tmp_path: Path) -> None:
    folder = Path(__file__).parent / "sigma_rules" / "shapes"
    imported = _run(tmp_path, "import", "sigma", str(folder), "--json")[1].splitlines()
    loaded = {d["rule_id"] for d in map(json.loads, imported) if d["loaded"]}
    assert loaded, "the shapes rules load"
    some = sorted(loaded)[0]
    assert _run(tmp_path, "disable", some)[0] == 0
    listed = {d["id"]: d for d in map(json.loads, _run(tmp_path, "list", "--json")[1].splitlines())}
    assert loaded <= set(listed)
    assert listed[some]["enabled"] is False
    assert listed["auth.brute_force"]["enabled"] is True
    assert some in _run(tmp_path, "list")[1]


def test_switching_a_sigma_id_no_imported_rule_has_warns(tmp_path: Path) -> None:
    """`rules disable sigma.<typo>` said "disabled" and did nothing a user could see."""
    folder = Path(__file__).parent / "sigma_rules" / "shapes"
    imported = _run(tmp_path, "import", "sigma", str(folder), "--json")[1].splitlines()
    some = sorted(d["rule_id"] for d in map(json.loads, imported) if d["loaded"])[0]
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path), "rules"]
    typo = runner.invoke(cli, [*base, "disable", some + "x"])
    assert typo.exit_code == 0, typo.output
    assert typo.stderr == (
        f"warning: no Sigma rule imported into {tmp_path / 'rules'} has the id {some + 'x'!r} "
        f"(did you mean {some!r}?); switched all the same, for a `detect --replay --rules` "
        "folder that may hold it\n"
    )
    known = runner.invoke(cli, [*base, "disable", some])
    assert known.exit_code == 0, known.output
    assert known.stderr == ""


def test_shipped_content_is_listed_by_family_tested_and_switchable(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "test", "keyvault.vault_deleted")
    assert code == 0, output
    lines = output.splitlines()
    fired = "ok   keyvault.vault_deleted: MICROSOFT.KEYVAULT/VAULTS/DELETE succeeded (fires)"
    assert fired in lines
    assert any(line.endswith("failed (stays quiet)") for line in lines)
    assert all(line.startswith("ok   keyvault.vault_deleted: ") for line in lines)
    code, output = _run(tmp_path, "list", "--by-family")
    assert code == 0
    assert output.startswith("Entra ID (entra, ")
    assert "Key Vault (keyvault, " in output
    assert "Entra ID (entra, " in output
    keyvault = output.split("Key Vault (keyvault, ")[1].split("\n\n")[0]
    assert "keyvault.vault_deleted" in keyvault
    assert "impact" in keyvault
    assert "auth.brute_force" not in keyvault
    assert _run(tmp_path, "disable", "keyvault.vault_deleted")[0] == 0
    listed = {d["id"]: d for d in map(json.loads, _run(tmp_path, "list", "--json")[1].splitlines())}
    assert listed["keyvault.vault_deleted"]["enabled"] is False
    assert listed["keyvault.vault_deleted"]["family"] == "keyvault"
    assert listed["keyvault.vault_deleted"]["tactics"] == ["impact"]
    assert listed["auth.brute_force"]["family"] == "entra"
    # Built-in rules name a technique; their tactics are the technique's.
    assert listed["auth.brute_force"]["tactics"] == ["credential-access"]
    code, output = _run(tmp_path, "disable", "keyvault.nope")
    assert code == 1
    assert "no rule 'keyvault.nope'" in output


def test_a_shipped_rule_is_tuned_with_its_thresholds_checked(tmp_path: Path) -> None:
    config = tmp_path / "detect.toml"
    config.write_text('[rules."storage.account_deleted"]\nthresholds = { dedup_minutes = 5 }\n')
    listed = {d["id"]: d for d in map(json.loads, _run(tmp_path, "list", "--json")[1].splitlines())}
    assert listed["storage.account_deleted"]["thresholds"] == {"dedup_minutes": 5}
    assert _run(tmp_path, "test", "storage.account_deleted")[0] == 0
    config.write_text('[rules."storage.account_deleted"]\nthresholds = { dedup_minutes = 0 }\n')
    code, output = _run(tmp_path, "test", "storage.account_deleted")
    assert code == 2
    assert "thresholds of rule storage.account_deleted: dedup_minutes" in output
