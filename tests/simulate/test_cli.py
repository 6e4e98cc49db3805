"""``hubsight simulate``: files, stdout, a real Kafka broker, the truth file and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from hubsight.cli.main import cli
from hubsight.devbroker import LocalBroker
from hubsight.simulate import SCENARIOS

START = ["--start", "2026-11-24T08:00:00Z"]


def _run(*args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, ["simulate", *args], catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def test_writes_message_bodies_and_truth_to_files(tmp_path: Path) -> None:
    out, truth = tmp_path / "sim.jsonl", tmp_path / "truth.jsonl"
    code, _, err = _run(
        *START, "--count", "2000", "--scenario", "brute-force", "--scenario", "list-keys",
        "--out", str(out), "--truth", str(truth), "--users", "30",
    )  # fmt: skip
    assert code == 0, err
    bodies = out.read_bytes().splitlines()
    records = sum(len(msgspec.json.decode(b)["records"]) for b in bodies)
    assert records == 2000
    assert f"sent {len(bodies)} messages, 2000 records" in err
    entries = [json.loads(line) for line in truth.read_text().splitlines()]
    assert sorted(e["scenario"] for e in entries) == ["brute-force", "list-keys"]
    assert all(0 <= r["message"] < len(bodies) for e in entries for r in e["records"])


def test_same_seed_same_output_on_stdout() -> None:
    first = _run(*START, "--count", "500", "--seed", "9", "--users", "20")[1]
    again = _run(*START, "--count", "500", "--seed", "9", "--users", "20")[1]
    other = _run(*START, "--count", "500", "--seed", "8", "--users", "20")[1]
    assert first == again
    assert first != other
    assert first.count(b"\n") >= 2


def test_all_expands_to_every_scenario(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    code, _, _ = _run(
        *START, "--duration", "2h", "--rate", "2", "--scenario", "all", "--truth", str(truth)
    )
    assert code == 0
    assert len(truth.read_text().splitlines()) == len(SCENARIOS)


def test_export_layout_round_trips_through_import(tmp_path: Path, data_dir: Path) -> None:
    export, bodies = tmp_path / "export", tmp_path / "bodies.jsonl"
    args = ["--start", "2026-11-24T08:30:00Z", "--duration", "1h", "--rate", "2",
            "--scenario", "defender-alert", "--scenario", "list-keys"]  # fmt: skip
    assert _run(*args, "--out", str(bodies))[0] == 0
    code, _, err = _run(*args, "--export", str(export))
    assert code == 0, err
    records = [
        r for b in bodies.read_bytes().splitlines() for r in msgspec.json.decode(b)["records"]
    ]
    alerts = [r for r in records if "category" not in r]
    assert alerts
    files = sorted(p.relative_to(export).as_posix() for p in export.rglob("PT1H.json"))
    assert any(f.startswith("insights-activity-logs/resourceId=/SUBSCRIPTIONS/") for f in files)
    assert any(f.startswith("insights-logs-signinlogs/tenantId=") for f in files)
    assert all("/y=2026/m=11/d=24/h=0" in f for f in files)
    lines = sum(len((export / f).read_bytes().splitlines()) for f in files)
    # Defender continuous-export alerts and truncated records (no category either) are not part
    # of a storage-account export.
    assert lines == len(records) - len(alerts)

    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "import", "--log-name", "archive", str(export)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] == len(files)
    assert summary["events"] == lines


def test_list_scenarios_names_each_with_what_it_does() -> None:
    code, out, _ = _run("--list-scenarios")
    assert code == 0
    lines = out.decode().splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--count", "10", "--duration", "1h"], "cannot be combined"),
        (["--scenario", "teleport"], "unknown scenario 'teleport'"),
        (["--kafka", "localhost:9092"], "--kafka needs --topic"),
        (["--out", "x.jsonl", "--export", "dir"], "cannot be combined"),
        (["--duration", "soon"], "cannot read the duration 'soon'"),
        (["--start", "yesterday", "--count", "5"], "cannot read the start time"),
        (["--start", "2026-11-24T08:00:00", "--count", "5"], "has no time zone"),
        (["--start", "2026-11-24T08:00:00Z"], "--start needs --duration or --count"),
    ],
)
def test_usage_errors_exit_2_with_the_problem(args: list[str], problem: str) -> None:
    code, out, err = _run(*args)
    assert code == 2
    assert problem in err
    assert out == b""


@pytest.mark.integration
def test_produces_to_a_kafka_topic(broker: LocalBroker, topic: str) -> None:
    code, _, err = _run(*START, "--count", "1500", "--kafka", broker.bootstrap, "--topic", topic)
    assert code == 0, err
    sent = int(err.split("sent ")[1].split(" messages")[0])
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"check-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    # Assigned, not subscribed: no consumer-group join to wait for.
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)])
    records = received = 0
    try:
        for _ in range(120):
            message = consumer.poll(1.0)
            if message is None or message.error():
                if received == sent:
                    break
                continue
            received += 1
            value = message.value()
            assert value is not None
            records += len(msgspec.json.decode(value)["records"])
    finally:
        consumer.close()
    assert received == sent
    assert records == 1500
