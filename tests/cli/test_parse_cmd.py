"""``hubsight parse``: JSON lines of normalized events, --stats counts, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "azure"
SIGNIN = DATA / "SignInLogs" / "unknown-user-without-domain.json"
UNKNOWN = DATA / "messages" / "unknown-category-without-operation.json"
POLICY = DATA / "Policy" / "microsoft-docs-invalid-wrapped-string.json"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("HUBSIGHT_GEOIP", raising=False)
    return CliRunner()


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_prints_one_json_object_per_event(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path),
            "parse",
            "--log-name",
            "entra",
            "--default-domain",
            "corp.example",
            str(SIGNIN),
            str(UNKNOWN),
            str(POLICY),
        ],
    )
    assert result.exit_code == 0, result.output
    events = _lines(result.output)
    assert [e["log_set"] for e in events] == [
        "Ingress Authentication",
        "Unparsed Data",
        "Cloud Service Admin Activity",
    ]
    assert events[0]["user"] == "jdoe@corp.example"
    assert events[0]["log_name"] == "entra"
    assert events[1]["parse_error"] == "no parser for category 'ContosoRelayHeartbeat'"
    assert events[2]["repairs"] == ["raw_control_character"]
    for event in events:
        assert "source_offset" not in event
        assert "record_index" not in event
        assert None not in event.values()


def test_drop_unparsed_and_stats(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path),
            "parse",
            "--drop-unparsed",
            "--stats",
            str(SIGNIN),
            str(UNKNOWN),
            str(POLICY),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "events": 2,
        "by_category": {"Policy": 1, "SignInLogs": 1},
        "by_log_set": {"Cloud Service Admin Activity": 1, "Ingress Authentication": 1},
        "unparsed_by_reason": {},
        "repairs": {"raw_control_character": 1},
        "dropped_unparsed": 1,
    }


def test_reads_standard_input(runner: CliRunner, tmp_path: Path) -> None:
    body = b'{"records": [%s]}' % SIGNIN.read_bytes()
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "parse", "-"], input=body)
    assert result.exit_code == 0, result.output
    assert [e["result"] for e in _lines(result.output)] == ["FAILED_BAD_LOGIN"]


def test_missing_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "parse", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_missing_geoip_database_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path), "parse", "--geoip", str(tmp_path / "x.mmdb"), str(SIGNIN)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "GeoIP database" in result.output


def test_line_delimited_files_are_read_line_by_line(runner: CliRunner, tmp_path: Path) -> None:
    record = json.dumps(json.loads(SIGNIN.read_bytes()))
    broken = record.replace('"durationMs": 0', '"durationMs": NaN')
    envelope = json.dumps({"records": [json.loads(record), json.loads(UNKNOWN.read_bytes())]})
    path = tmp_path / "PT1H.json"
    path.write_text(f"{record}\n\n{broken}\n{envelope}\n")
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "parse", str(path)])
    assert result.exit_code == 0, result.output
    events = _lines(result.output)
    assert [e["log_set"] for e in events] == [
        "Ingress Authentication",
        "Ingress Authentication",
        "Ingress Authentication",
        "Unparsed Data",
    ]
    assert [e.get("repairs") for e in events] == [None, ["nan_infinity"], None, None]


def test_empty_input_prints_nothing(runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"\n\n")
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "parse", str(empty)])
    assert result.exit_code == 0
    assert result.output == ""


@pytest.mark.parametrize("deep_first", [True, False], ids=["deep-first-line", "deep-later-line"])
def test_a_line_nested_10000_deep_is_unparsed_and_the_others_parsed(
    runner: CliRunner, tmp_path: Path, deep_first: bool
) -> None:
    signin = json.dumps(json.loads(SIGNIN.read_bytes())).encode()
    deep = b'{"category": "SignInLogs", "p": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    lines = [deep, signin, signin] if deep_first else [signin, deep, signin]
    (tmp_path / "poison.json").write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(
        cli, ["--data-dir", str(tmp_path), "parse", str(tmp_path / "poison.json")]
    )
    assert result.exit_code == 0, result.output
    events = _lines(result.stdout)
    deep_at = 0 if deep_first else 1
    assert [e.get("parse_error") for e in events] == [
        "parser failed: nested too deeply to read" if i == deep_at else None for i in range(3)
    ]
    assert [e["result"] for i, e in enumerate(events) if i != deep_at] == ["FAILED_BAD_LOGIN"] * 2
