"""``hubsight import``: backfill files and storage-account exports, once, resumably."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner, Result

from hubsight.cli.import_cmd import collect_files
from hubsight.cli.main import cli
from hubsight.simulate import SimulationConfig
from hubsight.simulate.engine import Simulation
from hubsight.store.embedded import EmbeddedStore

from tests.faults import SmallDisk


def _import(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "import", "--log-name", "archive", *args]
    )


def _summary(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _stored(data_dir: Path) -> list[dict[str, Any]]:
    store = EmbeddedStore(data_dir)
    try:
        return store.select(
            "SELECT source_topic, source_offset, record_index, category, log_set FROM events "
            "WHERE log_name = 'archive' ORDER BY source_topic, source_offset, record_index"
        )
    finally:
        store.close()


def _records(count: int) -> list[dict[str, Any]]:
    config = SimulationConfig(
        seed=4, rate=20, users=20, start=datetime(2026, 11, 20, 9, tzinfo=UTC), count=count
    )
    return [
        record
        for message in Simulation(config).messages()
        for record in msgspec.json.decode(message.body)["records"]
    ]


def _sign_in() -> dict[str, Any]:
    """One simulated interactive sign-in (Ingress Authentication)."""
    return next(r for r in _records(200) if r.get("category") == "SignInLogs")


def _write_export(root: Path, records: list[dict[str, Any]]) -> dict[str, int]:
    """Records laid out as Azure's storage-account export: one folder per category and hour."""
    files: dict[Path, list[bytes]] = {}
    for record in records:
        category = str(record.get("category", "SecurityAlert")).lower()
        hour = str(record.get("time", "2026-11-20T09"))[:13]
        year, month, rest = hour.split("-")
        day, h = rest.split("T")
        path = (
            root / f"insights-logs-{category}" / "resourceId=/TENANTS/T1/PROVIDERS/MICROSOFT.AADIAM"
            / f"y={year}" / f"m={month}" / f"d={day}" / f"h={h}" / "m=00" / "PT1H.json"
        )  # fmt: skip
        files.setdefault(path, []).append(msgspec.json.encode(record))
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
    return {path.relative_to(root).as_posix(): len(lines) for path, lines in files.items()}


def test_importing_the_same_file_twice_stores_it_once(tmp_path: Path, data_dir: Path) -> None:
    bodies = tmp_path / "bodies.jsonl"
    config = SimulationConfig(
        seed=2, rate=20, users=20, start=datetime(2026, 11, 20, 9, tzinfo=UTC), count=600
    )
    bodies.write_bytes(b"".join(m.body + b"\n" for m in Simulation(config).messages()))
    lines = len(bodies.read_bytes().splitlines())

    first = _summary(_import(data_dir, str(bodies)))
    assert first["messages"] == lines
    assert first["events"] == 600
    second = _summary(_import(data_dir, str(bodies)))
    assert second["events"] == 0
    assert second["skipped_messages"] == lines

    stored = _stored(data_dir)
    assert len(stored) == 600
    assert {row["source_topic"] for row in stored} == {"bodies.jsonl"}
    assert sorted({row["source_offset"] for row in stored}) == list(range(lines))


def test_storage_export_layout_is_imported_line_by_line(tmp_path: Path, data_dir: Path) -> None:
    root = tmp_path / "export"
    records = _records(400)
    layout = _write_export(root, records)
    summary = _summary(_import(data_dir, str(root)))
    assert summary["files"] == len(layout)
    assert summary["events"] == len(records)
    # Only the simulator's truncated records are unparsed: no category, and not one of Defender's
    # continuous-export objects (an alert's id, a posture object's type).
    exported = ("category", "SystemAlertId", "type", "Type")
    truncated = [r for r in records if not any(key in r for key in exported)]
    assert summary["unparsed"] == len(truncated)

    stored = _stored(data_dir)
    per_file = Counter(row["source_topic"] for row in stored)
    assert dict(per_file) == layout
    # One record per line: the line number is the offset, each line its own message.
    for topic, count in layout.items():
        offsets = [row["source_offset"] for row in stored if row["source_topic"] == topic]
        assert offsets == list(range(count))
    signins = [row for row in stored if row["category"] == "SignInLogs"]
    assert {row["log_set"] for row in signins} == {"Ingress Authentication"}


def test_export_files_are_taken_in_hour_order_then_path(tmp_path: Path) -> None:
    names = [
        "insights-logs-signinlogs/tenantId=T/y=2026/m=11/d=20/h=10/m=00/PT1H.json",
        "insights-logs-auditlogs/tenantId=T/y=2026/m=11/d=20/h=11/m=00/PT1H.json",
        "insights-activity-logs/resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=20/h=09/m=00/PT1H.json",
        "insights-logs-auditlogs/tenantId=T/y=2026/m=11/d=20/h=10/m=00/PT1H.json",
        "notes/extra.json",
        ".hidden/skipped.json",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    assert [f.topic for f in collect_files((tmp_path,))] == [
        names[2],
        names[3],
        names[0],
        names[1],
        names[4],
    ]


def test_lines_appended_later_are_imported_alone(tmp_path: Path, data_dir: Path) -> None:
    records = _records(60)
    path = tmp_path / "PT1H.json"
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records[:40]))
    assert _summary(_import(data_dir, str(path)))["events"] == 40
    with path.open("ab") as handle:
        handle.write(b"\n".join(msgspec.json.encode(r) for r in records[40:]) + b"\n")
    resumed = _summary(_import(data_dir, str(path)))
    assert resumed["events"] == 20
    assert resumed["skipped_messages"] == 40
    assert len(_stored(data_dir)) == 60


def test_a_pretty_printed_document_is_one_message(tmp_path: Path, data_dir: Path) -> None:
    record = _records(1)[0]
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"records": [record, record]}, indent=2))
    assert _summary(_import(data_dir, str(path)))["events"] == 2
    assert _summary(_import(data_dir, str(path)))["events"] == 0
    assert [(r["source_offset"], r["record_index"]) for r in _stored(data_dir)] == [(0, 0), (0, 1)]


def test_broken_lines_are_kept_as_unparsed_with_their_position(
    tmp_path: Path, data_dir: Path
) -> None:
    record = msgspec.json.encode(_sign_in())
    path = tmp_path / "mixed.json"
    path.write_bytes(record + b"\n{not json at all\n\n" + record + b"\n")
    summary = _summary(_import(data_dir, str(path)))
    assert summary["events"] == 3
    assert summary["unparsed"] == 1
    assert [r["source_offset"] for r in _stored(data_dir)] == [0, 1, 3]


@pytest.mark.parametrize("lines", [1, 3])
def test_a_byte_order_mark_is_ignored(tmp_path: Path, data_dir: Path, lines: int) -> None:
    path = tmp_path / "bom.json"
    record = msgspec.json.encode(_sign_in())
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join([record] * lines) + b"\n")
    summary = _summary(_import(data_dir, str(path)))
    assert summary["events"] == lines
    assert summary["unparsed"] == 0


def test_progress_goes_to_stderr_and_the_summary_to_stdout(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(msgspec.json.encode(_records(1)[0]) + b"\n")
    result = _import(data_dir, str(path))
    assert result.exit_code == 0
    assert "importing" in result.stderr
    assert json.loads(result.stdout)["events"] == 1


def test_files_of_the_same_name_are_keyed_by_their_path_from_the_common_parent(
    tmp_path: Path, data_dir: Path
) -> None:
    record = msgspec.json.encode(_sign_in()) + b"\n"
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "PT1H.json").write_bytes(record * 2)
    (tmp_path / "other.json").write_bytes(record)
    first, second = str(tmp_path / "a" / "PT1H.json"), str(tmp_path / "b/c/PT1H.json")
    other = str(tmp_path / "other.json")
    summary = _summary(_import(data_dir, first, second, other, first))  # one named twice
    assert (summary["files"], summary["events"]) == (3, 5)
    topics = Counter(r["source_topic"] for r in _stored(data_dir))
    # Only the clashing names change: a file without a namesake keeps its name.
    assert topics == {"a/PT1H.json": 2, "b/c/PT1H.json": 2, "other.json": 1}
    again = _summary(_import(data_dir, second, first))
    assert (again["events"], again["skipped_messages"]) == (0, 4)


@pytest.mark.parametrize("name", ["PT1H.json.gz", "PT1H.gz", "named-plainly.json"])
def test_gzip_files_are_read_as_their_content(tmp_path: Path, data_dir: Path, name: str) -> None:
    records = _records(30)
    lines = b"".join(msgspec.json.encode(r) + b"\n" for r in records)
    path = tmp_path / name
    path.write_bytes(gzip.compress(lines))
    result = _import(data_dir, str(path))
    assert json.loads(result.stdout)["events"] == len(records)
    assert [r["source_offset"] for r in _stored(data_dir)] == list(range(len(records)))
    # A pretty-printed document compressed is still one message.
    document = tmp_path / "doc.json.gz"
    document.write_bytes(gzip.compress(json.dumps({"records": records[:2]}, indent=2).encode()))
    assert _summary(_import(data_dir, str(document)))["events"] == 2


def test_damaged_gzip_is_an_error_naming_the_file_and_keeps_what_was_read(
    tmp_path: Path, data_dir: Path
) -> None:
    records = _records(400)
    lines = b"".join(msgspec.json.encode(r) + b"\n" for r in records)
    compressed = gzip.compress(lines)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(compressed[: len(compressed) * 3 // 4])
    result = _import(data_dir, str(path))
    assert result.exit_code == 1
    assert "cut.json.gz" in result.stderr
    assert "damaged or cut short" in result.stderr
    assert "gzip -t" in result.stderr
    stored = [r["source_offset"] for r in _stored(data_dir)]
    assert 0 < len(stored) < len(records)
    assert stored == list(range(len(stored)))


@pytest.mark.parametrize("missing", [["--log-name"], []])
def test_log_name_and_paths_are_required(data_dir: Path, missing: list[str]) -> None:
    args = ["--data-dir", str(data_dir), "import", *missing]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2


def test_a_file_spanning_150_months_is_stored_whole(tmp_path: Path, data_dir: Path) -> None:
    record = _sign_in()
    lines = []
    for month in range(150):
        moment = datetime(2012 + month // 12, month % 12 + 1, 3, 4, 5, tzinfo=UTC)
        properties = {**record["properties"], "createdDateTime": moment.isoformat()}
        lines.append(msgspec.json.encode({**record, "properties": properties}))
    archive = tmp_path / "decade.json"
    archive.write_bytes(b"\n".join(lines) + b"\n")
    assert _summary(_import(data_dir, str(archive)))["events"] == 150
    store = EmbeddedStore(data_dir)
    try:
        (row,) = store.select(
            "SELECT count() AS n, uniqExact(toYYYYMM(timestamp)) AS months, "
            "min(timestamp) AS first FROM events WHERE log_name = 'archive'"
        )
    finally:
        store.close()
    assert row == {"n": 150, "months": 150, "first": "2012-01-03 04:05:00.000"}


def test_a_full_disk_stops_the_import_saying_how_far_it_got_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    # 12,000 lines of ~1 KB on disk each, in three files: more than the 12 MB disk holds.
    for number in range(3):
        lines = [
            json.dumps(
                {"category": "Custom", "n": number * 4000 + i, "pad": os.urandom(1000).hex()}
            )
            for i in range(4000)
        ]
        (tmp_path / "in" / f"part{number}.json").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / f"part{number}.json").write_text("\n".join(lines) + "\n")
    with SmallDisk(tmp_path / "disk", 12) as disk:
        failed = _import(disk.path, str(tmp_path / "in"))
        assert failed.exit_code == 1
        error = re.search(
            r"error: writing (\d+) events failed: the disk of (\S+) is full \([\d.]+ [KM]B "
            r"free\); (\d+) events of (\d) file\(s\) were stored before this batch\n",
            failed.stderr,
        )
        assert error is not None, failed.stderr
        assert error[2] == str(disk.path / "clickhouse")
        stored_before = int(error[3])
        # The first batch (5,000 events) may be the one that does not fit.
        assert stored_before in (0, 5_000, 10_000)
        assert (
            f"hint: free space on the disk of {disk.path / 'clickhouse'} or give it more; then "
            "run the same import again: it skips what is stored and goes on from there\n"
        ) in failed.stderr
        assert len(_stored(disk.path)) == stored_before

        disk.resize(64)
        again = _summary(_import(disk.path, str(tmp_path / "in")))
        assert again["events"] == 12_000 - stored_before
        store = EmbeddedStore(disk.path)
        try:
            (row,) = store.select(
                "SELECT count() AS n, uniqExact(JSONExtractInt(raw, 'n')) AS distinct_n FROM events"
            )
        finally:
            store.close()
        assert row == {"n": 12_000, "distinct_n": 12_000}


def test_a_line_nested_10000_deep_is_stored_unparsed_beside_the_others(
    tmp_path: Path, data_dir: Path
) -> None:
    signin = msgspec.json.encode(_sign_in())
    deep = b'{"category": "SignInLogs", "p": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    (tmp_path / "poison.json").write_bytes(b"\n".join([deep, signin, deep, signin]) + b"\n")
    summary = _summary(_import(data_dir, str(tmp_path / "poison.json")))
    assert (summary["events"], summary["unparsed"]) == (4, 2)
    assert [(r["source_offset"], r["log_set"]) for r in _stored(data_dir)] == [
        (0, "Unparsed Data"),
        (1, "Ingress Authentication"),
        (2, "Unparsed Data"),
        (3, "Ingress Authentication"),
    ]


_SIGNINS = "insights-logs-signinlogs"


@pytest.mark.parametrize(
    ("first", "then"),
    [
        # The whole export, then one category's folder inside it; and the other way round.
        (".", _SIGNINS),
        (f"{_SIGNINS}/resourceId=/TENANTS", "."),
    ],
)
def test_a_folder_of_an_export_imported_again_stores_no_duplicates(
    tmp_path: Path, data_dir: Path, first: str, then: str
) -> None:
    root = tmp_path / "download"
    layout = _write_export(root, _records(300))
    signins = sum(n for key, n in layout.items() if key.startswith(f"{_SIGNINS}/"))
    assert 0 < signins < sum(layout.values())
    once = _summary(_import(data_dir, str(root / first)))
    again = _summary(_import(data_dir, str(root / then)))
    if first == ".":
        assert (once["events"], again["events"], again["skipped_messages"]) == (
            sum(layout.values()),
            0,
            signins,
        )
    else:
        assert (once["events"], again["events"]) == (signins, sum(layout.values()) - signins)
        assert again["skipped_messages"] == signins
    # Each file under its path inside the export, whichever folder was named: stored once.
    stored = _stored(data_dir)
    assert dict(Counter(row["source_topic"] for row in stored)) == layout


def test_an_export_without_its_container_is_keyed_from_resource_id(
    tmp_path: Path, data_dir: Path
) -> None:
    layout = _write_export(tmp_path / "download", _records(100))
    only = tmp_path / "only"
    os.renames(tmp_path / "download" / _SIGNINS, only)
    keys = {k.removeprefix(f"{_SIGNINS}/"): n for k, n in layout.items() if k.startswith(_SIGNINS)}
    once = _summary(_import(data_dir, str(only)))
    again = _summary(_import(data_dir, str(only / "resourceId=" / "TENANTS" / "T1")))
    assert (once["events"], again["events"]) == (sum(keys.values()), 0)
    assert dict(Counter(row["source_topic"] for row in _stored(data_dir))) == keys


def _events_parts(data_dir: Path) -> list[Path]:
    """Committed parts of the events table (ClickHouse writes a part under tmp_ and renames it
    when it is whole)."""
    return [
        part
        for part in (data_dir / "clickhouse" / "store").glob("*/*/all_*")
        if "`log_set`" in (part / "columns.txt").read_text(errors="replace")
    ]


def test_an_import_killed_midway_then_run_again_stores_everything_once(
    tmp_path: Path, data_dir: Path
) -> None:
    lines = 15_000  # three batches of 5,000
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(f'{{"category": "Backfill", "seq": {i}}}\n' for i in range(lines)))
    command = [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "import"]
    command += ["--log-name", "archive", str(archive)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _events_parts(data_dir) and process.poll() is None:
            assert time.monotonic() < deadline, "no batch was stored within 60 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    store = EmbeddedStore(data_dir)
    try:
        (row,) = store.select("SELECT count() AS n FROM events")
    finally:
        store.close()
    before = int(row["n"])
    # Batches are whole or absent: the kill came after the first, before the last.
    assert before % 5_000 == 0
    assert 0 < before < lines
    summary = _summary(_import(data_dir, str(archive)))
    assert (summary["events"], summary["skipped_messages"]) == (lines - before, before)
    store = EmbeddedStore(data_dir)
    try:
        (row,) = store.select(
            "SELECT count() AS n, uniqExact(JSONExtractInt(raw, 'seq')) AS seqs, "
            "min(JSONExtractInt(raw, 'seq')) AS low, max(JSONExtractInt(raw, 'seq')) AS high "
            "FROM events"
        )
    finally:
        store.close()
    assert row == {"n": lines, "seqs": lines, "low": 0, "high": lines - 1}
