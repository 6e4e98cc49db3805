"""``hubsight search`` end to end on a data directory holding the fixed data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.store.embedded import EmbeddedStore

from tests.query.dataset import ROWS, WINDOW, events, groups, newest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the data set; closed, so each command opens it itself."""
    path = tmp_path_factory.mktemp("search-cli")
    store = EmbeddedStore(path)
    store.write(events())
    store.close()
    return path


def _run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "search", *args, "--from", WINDOW[0], "--to", WINDOW[1]]
    )
    return result.exit_code, result.stdout, result.stderr


def test_table_result_as_json(data_dir: Path) -> None:
    code, out, _ = _run(
        data_dir,
        "where(result=FAILED_BAD_PASSWORD) groupby(user)",
        "--log-set",
        "Ingress Authentication",
        "--format",
        "json",
    )
    expected = groups(
        lambda r: r.user,
        lambda r: r.result == "FAILED_BAD_PASSWORD" and r.log_set == "Ingress Authentication",
    )
    assert code == 0
    assert json.loads(out) == {"kind": "table", "columns": ["user", "count"], "rows": expected}


def test_events_as_json_with_raw(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "alice", "--limit", "3", "--format", "json")
    document = json.loads(out)
    assert code == 0
    assert list(document) == ["kind", "events"]
    assert [e["source_offset"] for e in document["events"]] == newest(
        lambda r: "alice" in r.raw_text, limit=3
    )
    assert document["events"][0]["raw"]["properties"]["userPrincipalName"] == "alice@corp.com"


def test_timeseries_as_json(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "timeslice(1d)", "--format", "json")
    document = json.loads(out)
    assert code == 0
    assert document["kind"] == "timeseries"
    assert document["columns"] == ["timestamp", "count"]
    assert [n for _, n in document["rows"]] == [0, 31, 29]
    assert sum(n for _, n in document["rows"]) == len(ROWS)


def test_table_and_csv_formats(data_dir: Path) -> None:
    _, table, _ = _run(data_dir, "groupby(log_name) sort(asc)")
    _, csv_text, _ = _run(data_dir, "groupby(log_name) sort(asc)", "--format", "csv")
    expected = groups(lambda r: r.log_name, descending=False)
    assert table.splitlines()[0].split() == ["log_name", "count"]
    assert table.splitlines()[1].split() == [*expected[0][0].split(), str(expected[0][1])]
    assert csv_text.splitlines() == ["log_name,count", *(f"{k},{n}" for k, n in expected)]


def test_log_name_filter_and_limit(data_dir: Path) -> None:
    code, out, _ = _run(
        data_dir, "where()", "--log-name", "Defender Alerts", "--limit", "2", "--format", "json"
    )
    ids = [e["source_offset"] for e in json.loads(out)["events"]]
    assert (code, ids) == (0, newest(lambda r: r.log_name == "Defender Alerts", limit=2))


def test_query_error_exits_2_with_the_positioned_message(data_dir: Path) -> None:
    code, out, err = _run(data_dir, "where(user CONTAIN x)")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "error: 'CONTAIN' is not an operator",
        "where(user CONTAIN x)",
        "           ^",
        'hint: did you mean CONTAINS? (to search for the word, quote it: "CONTAIN")',
    ]


def test_unknown_key_warns_and_strict_refuses(data_dir: Path) -> None:
    code, out, err = _run(data_dir, "groupby(riskLevel)", "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"] == groups(lambda r: r.raw["properties"]["riskLevel"])
    assert err.splitlines()[:2] == [
        "warning: 'riskLevel' is not a hubsight key: read from the raw record's 'riskLevel' or "
        "'properties.riskLevel' (any case) (line 1, column 9)",
        'hint: did you mean risk_level? a strict search (--strict, or "strict": true in '
        "the API) refuses unknown keys",
    ]
    assert json.loads(out)["warnings"][0]["column"] == 9
    code, out, err = _run(data_dir, "groupby(riskLevel)", "--strict")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "error: unknown key 'riskLevel'"


def test_bad_time_range_is_a_usage_error(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "search", "where()", "--last", "fortnight"]
    )
    assert result.exit_code == 2
    assert "cannot read the time range 'fortnight'" in result.stderr
