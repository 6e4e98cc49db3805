"""A command gives the same exit code for the same bad input whether it does the work itself or
asks the ``hubsight run`` that holds the data directory (README: 0 success, 1 failure, 2 usage)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hubsight.cli.main import cli
from hubsight.service import is_running

from tests.support import hubsight_running

# (what is wrong, the command's arguments, exit code, the start of the error line)
CASES = [
    ("time range", ["search", "corp", "--last", "banana"], 2, "error: cannot read the time range"),
    ("start time", ["search", "corp", "--from", "2020-13-01"], 2, "error: cannot read the start"),
    ("time zone", ["search", "corp", "--timezone", "Mars/Base"], 2, "error: unknown time zone"),
    ("query syntax", ["search", "where("], 2, "error: the query ends too early"),
    ("backup target", ["backup", "{busy}"], 2, "error: {busy} exists and is not empty"),
    ("sigma file", ["rules", "hunt", "{sigma}"], 2, "error: no rule of"),
    ("unknown rule", ["rules", "hunt", "no-such-rule"], 1, "error: no Sigma rule file"),
]


def _cli(data_dir: Path, args: list[str]) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """A directory that is not empty, and a YAML file that is no Sigma rule."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    sigma = tmp_path / "not-sigma.yml"
    sigma.write_text("title: no log source\n")
    return {"busy": str(busy), "sigma": str(sigma)}


def test_the_same_bad_input_exits_alike_with_and_without_the_service(
    tmp_path: Path, paths: dict[str, str]
) -> None:
    # Through the service's API every refusal but a 404 exited 1, though alone it exited 2.
    data_dir = tmp_path / "data"
    cases = [
        (what, [a.format(**paths) for a in args], code, start.format(**paths))
        for what, args, code, start in CASES
    ]
    alone = {what: _cli(data_dir, args) for what, args, _, _ in cases}
    with hubsight_running(data_dir):
        assert is_running(data_dir)
        served = {what: _cli(data_dir, args) for what, args, _, _ in cases}
    for what, _, code, start in cases:
        for path, result in (("alone", alone[what]), ("through the service", served[what])):
            assert (what, path, result.exit_code) == (what, path, code), result.output
            assert result.stderr.startswith(start), (what, path, result.stderr)
            assert "hint: " in result.stderr, (what, path)
    assert (Path(paths["busy"]) / "notes.txt").read_text() == "mine"
