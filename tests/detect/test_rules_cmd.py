"""``hubsight rules list | enable | disable | test``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hubsight.cli.main import cli


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
    assert output.count("ok  ") == 3
    (tmp_path / "detect.toml").write_text(
        '[rules."auth.brute_force"]\nthresholds = { count = 50 }\n'
    )
    code, output = _run(tmp_path, "test", "auth.brute_force")
    assert code == 1
    assert "FAIL auth.brute_force: ten failures in nine minutes (fires)" in output
