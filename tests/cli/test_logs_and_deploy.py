"""``--log-format json`` writes one JSON object per line; deploy/'s systemd unit is sandboxed
and starts a command line the CLI accepts."""

from __future__ import annotations

import io
import json
import logging
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.errors import ConfigError
from hubsight.logformat import (
    KAFKA_CLIENT_LOGGER,
    LIBRARY_LOGGERS,
    configure_logging,
    quiet_library_logs,
    resolve_log_format,
)

DEPLOY = Path(__file__).parents[2] / "deploy"


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_per_line(restore_logging: object) -> None:
    out = io.StringIO()
    configure_logging("json", out)
    logging.getLogger("hubsight.collector").info("collecting from %s", "azure-prod")
    try:
        raise ValueError("bad\nrecord")
    except ValueError:
        logging.getLogger("hubsight").exception("batch failed")
    logging.getLogger("hubsight").debug("not shown below INFO")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO"
    assert first["logger"] == "hubsight.collector"
    assert first["message"] == "collecting from azure-prod"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "batch failed"
    assert second["exception"].startswith("Traceback")
    assert second["exception"].endswith("ValueError: bad\nrecord")


def test_text_logs_stay_readable(restore_logging: object) -> None:
    out = io.StringIO()
    configure_logging("text", out)
    logging.getLogger("hubsight").warning("no console account yet")
    assert out.getvalue().rstrip().endswith("WARNING hubsight: no console account yet")


def test_library_lines_kept_off_a_commands_stderr_still_reach_runs_log(
    restore_logging: object,
) -> None:
    # Every command keeps them from Python's last-resort stderr; `run` logs them as its own.
    quiet_library_logs()
    quiet_library_logs()
    for name in LIBRARY_LOGGERS:
        nulls = [h for h in logging.getLogger(name).handlers if isinstance(h, logging.NullHandler)]
        assert len(nulls) == 1, name
    out = io.StringIO()
    configure_logging("text", out)
    logging.getLogger("clickhouse_connect.driver.httpclient").warning("Unexpected Http Driver")
    logging.getLogger(KAFKA_CLIENT_LOGGER).error("FAIL [rdkafka#consumer-1] refused")
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "clickhouse_connect.driver.httpclient: Unexpected Http Driver",
        "hubsight.kafka.client: FAIL [rdkafka#consumer-1] refused",
    ]


def test_the_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBSIGHT_LOG_FORMAT", raising=False)
    assert resolve_log_format(None) == "text"
    monkeypatch.setenv("HUBSIGHT_LOG_FORMAT", "json")
    assert resolve_log_format(None) == "json"
    assert resolve_log_format("text") == "text"
    monkeypatch.setenv("HUBSIGHT_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError) as caught:
        resolve_log_format(None)
    assert "HUBSIGHT_LOG_FORMAT='yaml'" in caught.value.message
    assert caught.value.hint == "use text or json"
    refused = CliRunner().invoke(cli, ["run", "--log-format", "yaml"])
    assert refused.exit_code == 2
    assert "'yaml' is not one of 'text', 'json'" in refused.output


def _directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_systemd_unit_is_sandboxed_and_runs_a_valid_command() -> None:
    unit = (DEPLOY / "hubsight.service").read_text()
    d = _directives(unit)
    assert d["User"] == d["Group"] == ["hubsight"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["ReadWritePaths"] == ["/var/lib/hubsight"]
    assert d["CapabilityBoundingSet"] == [""]
    assert "HUBSIGHT_DATA_DIR=/var/lib/hubsight" in d["Environment"]
    assert "HUBSIGHT_LOG_FORMAT=json" in d["Environment"]
    assert "u hubsight " in (DEPLOY / "hubsight.sysusers").read_text()
    # The command line is one the CLI accepts (parsed, not run).
    args = shlex.split(d["ExecStart"][0])[1:]
    assert args[0] == "run"
    run = cli.get_command(click.Context(cli), "run")
    assert run is not None
    parsed = run.make_context("run", args[1:])
    assert (parsed.params["host"], parsed.params["port"]) == ("127.0.0.1", 8080)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_every_directive(tmp_path: Path) -> None:
    # The installed path does not exist here: point ExecStart at a program that does.
    unit = (DEPLOY / "hubsight.service").read_text()
    copy = tmp_path / "hubsight.service"
    copy.write_text(unit.replace("/opt/hubsight/.venv/bin/hubsight", shutil.which("true") or ""))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert "Unknown key" not in checked.stderr
