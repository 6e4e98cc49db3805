"""``hubsight detect --replay`` over files of records and over stored events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import Simulation, SimulationConfig
from hubsight.sources.base import Message
from hubsight.store.embedded import EmbeddedStore

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONTRACT = {
    "rule_id",
    "title",
    "severity",
    "user",
    "source_ip",
    "first_event_time",
    "last_event_time",
    "evidence",
}


def _bodies() -> list[bytes]:
    config = SimulationConfig(
        seed=5,
        rate=2,
        users=20,
        scenarios=("brute-force",),
        start=START,
        duration=timedelta(minutes=30),
        categories=("SignInLogs",),
    )
    return [m.body for m in Simulation(config).messages()]


def _alerts(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_replay_files_prints_the_contract(tmp_path: Path) -> None:
    bodies = _bodies()
    path, rest = tmp_path / "messages.ndjson", tmp_path / "rest.ndjson"
    path.write_bytes(b"\n".join(bodies[:-2]) + b"\n")
    rest.write_bytes(b"\n".join(bodies[-2:]) + b"\n")
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "d"), "detect", "--replay", "--input", str(path), str(rest)],
    )
    assert result.exit_code == 0, result.output
    alerts = _alerts(result.output)
    brute = [a for a in alerts if a["rule_id"] == "auth.brute_force"]
    assert brute, [a["rule_id"] for a in alerts]
    assert set(brute[0]) >= CONTRACT
    evidence = brute[0]["evidence"]
    assert isinstance(evidence, list)
    assert len(evidence) >= 10
    assert evidence[0]["source_topic"] == str(path)
    # A backtest leaves the data directory's alerts alone.
    assert DetectDB.in_dir(tmp_path / "d").rows("SELECT id FROM alerts") == []


def test_replay_needs_a_source() -> None:
    result = CliRunner().invoke(cli, ["detect", "--replay"])
    assert result.exit_code == 2
    assert "give either --input FILE" in result.output
    live = CliRunner().invoke(cli, ["detect"])
    assert live.exit_code == 2


def test_replay_from_the_store(tmp_path: Path) -> None:
    parser = MessageParser(log_name="azure", registry=default_registry(None, None))
    store = EmbeddedStore(tmp_path)
    try:
        for offset, body in enumerate(_bodies()):
            message = Message(
                topic="hub", partition=0, offset=offset, value=body, received_time=START
            )
            store.write(parser.parse(message))
    finally:
        store.close()
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path),
            "detect",
            "--replay",
            "--from",
            "2026-01-05T08:00:00",
            "--to",
            "2026-01-05T11:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    rules = {a["rule_id"] for a in _alerts(result.output)}
    assert "auth.brute_force" in rules
