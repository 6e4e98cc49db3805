"""``hubsight audit`` and ``audit verify``; changes made on the command line are recorded too."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.investigations import InvestigationFilter, InvestigationStore
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.store.audit import cli_actor
from hubsight.store.catalog import CATALOG_FILE

from tests.support import PLANTED, PLANTED_PASSWORD, assert_no_secret, connection_string


def _invoke(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], env=env)
    assert_no_secret(result.stdout)
    assert_no_secret(result.stderr)
    return result


@pytest.fixture(scope="module")
def made_here(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory changed by eight commands (made once: each test takes a copy)."""
    data_dir = tmp_path_factory.mktemp("cli-changes")
    db = DetectDB.in_dir(data_dir)
    engine = DetectionEngine(db, [build_rule(BruteForceSuccess, {})], options=EngineOptions())
    assert engine.process(next(e for e in BruteForceSuccess.examples() if e.fires).events)
    engine.close()
    investigations = InvestigationStore(DetectDB.in_dir(data_dir))
    (investigation,) = investigations.find(InvestigationFilter())
    (alert,) = investigations.member_alerts(investigation.id)
    env = {"PW": PLANTED_PASSWORD, "EH_CONN": connection_string()}
    for args in (
        ("users", "create", "--name", "eve", "--password-env", "PW"),
        ("users", "token", "--name", "eve", "--label", "soar"),
        ("source", "add", "hub", "--server", "contoso-logs.servicebus.windows.net",
         "--connection-string-env", "EH_CONN"),
        ("source", "disable", "hub"),
        ("source", "remove", "hub"),
        ("retention", "set", "Unparsed Data", "7"),
        ("rules", "disable", "auth.brute_force"),
        ("users", "delete", "--name", "eve"),
        ("alerts", "close", alert.id, "--disposition", "malicious", "--comment", "seen"),
        ("investigations", "close", investigation.id, "--disposition", "benign"),
    ):  # fmt: skip
        result = _invoke(data_dir, *args, env=env)
        assert result.exit_code == 0, (args, result.stderr)
        if args[:2] == ("users", "token"):
            listed = json.loads(_invoke(data_dir, "users", "tokens", "--json").stdout)
            revoked = _invoke(data_dir, "users", "revoke-token", "--id", listed[0]["id"])
            assert revoked.exit_code == 0, revoked.stderr
    return data_dir


@pytest.fixture
def changed(made_here: Path, tmp_path: Path) -> Path:
    """A copy of ``made_here`` for one test to read or tamper with."""
    return Path(shutil.copytree(made_here, tmp_path / "data"))


def test_command_line_changes_are_recorded_as_the_os_user(changed: Path) -> None:
    data_dir = changed
    investigations = InvestigationStore(DetectDB.in_dir(data_dir))
    (investigation,) = investigations.find(InvestigationFilter())
    investigation_id = investigation.id
    alert_id = investigations.member_alerts(investigation_id)[0].id
    lines = _invoke(data_dir, "audit", "--json").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["action"], e["target"]) for e in reversed(entries)] == [
        ("account.create", "eve"),
        ("token.create", "eve"),
        ("token.revoke", "eve"),
        ("source.create", "hub"),
        ("source.update", "hub"),
        ("source.delete", "hub"),
        ("retention.update", "Unparsed Data"),
        ("rule.update", "auth.brute_force"),
        ("account.delete", "eve"),
        ("alert.triage", alert_id),
        ("investigation.triage", investigation_id),
    ]
    assert {(e["actor"], e["via"], e["address"]) for e in entries} == {(cli_actor(), "cli", None)}
    by_action = {e["action"]: e["details"] for e in entries}
    assert by_action["source.update"]["changes"] == {"enabled": [True, False]}
    assert by_action["retention.update"]["changes"] == {"days": [14, 7]}
    assert by_action["rule.update"]["changes"] == {"enabled": [None, False]}
    assert by_action["alert.triage"] == {
        "changes": {"disposition": [None, "malicious"], "status": ["open", "closed"]},
        "comment": "seen",
    }
    # The alert was closed already: closing its investigation changed the investigation only.
    assert by_action["investigation.triage"]["changes"] == {
        "disposition": [None, "benign"],
        "status": ["open", "closed"],
    }
    assert by_action["source.create"]["changes"]["profile.connection_string"] == [None, "(set)"]
    for path in data_dir.glob("*.sqlite3*"):
        for secret in PLANTED:
            assert secret.encode() not in path.read_bytes()


def test_the_table_filters_and_verify_passes_on_a_clean_trail(changed: Path) -> None:
    data_dir = changed
    table = _invoke(data_dir, "audit", "--action", "source", "--since", "1h").stdout.splitlines()
    header = ["SEQ", "AT", "WHO", "FROM", "ACTION", "OBJECT", "OUTCOME", "CHANGED"]
    assert table[0].split() == header
    assert [line.split()[4] for line in table[1:]] == ["source.delete", "source.update",
                                                       "source.create"]  # fmt: skip
    assert "enabled: True -> False" in table[2]
    none = _invoke(data_dir, "audit", "--actor", "somebody-else")
    assert none.stdout == "no audit entries match\n"
    bad = _invoke(data_dir, "audit", "--since", "soon")
    assert bad.exit_code == 2
    assert "--since: cannot read the time range 'soon'" in bad.stderr
    verified = _invoke(data_dir, "audit", "verify")
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.startswith("ok: 11 entries since ")


def _tamper(data_dir: Path, statement: str) -> None:
    db = sqlite3.connect(data_dir / CATALOG_FILE, isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute(statement)
    finally:
        db.close()


def test_verify_fails_naming_the_entry_that_breaks_the_chain(changed: Path) -> None:
    data_dir = changed
    _tamper(data_dir, "UPDATE audit_log SET target = 'other' WHERE seq = 4")
    edited = _invoke(data_dir, "audit", "verify")
    assert edited.exit_code == 1
    assert edited.stderr.splitlines()[0] == (
        "BROKEN entry 4: its content does not match its hash (edited)"
    )
    assert "error: the audit trail was changed: 1 break(s) in 11 entries" in edited.stderr
    _tamper(data_dir, "DELETE FROM audit_log WHERE seq >= 10")
    cut = _invoke(data_dir, "audit", "verify")
    assert cut.exit_code == 1
    assert "entries 10..11 were cut from the end" in cut.stderr
