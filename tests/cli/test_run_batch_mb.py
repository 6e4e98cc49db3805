"""``hubsight run --batch-mb`` (or ``$HUBSIGHT_BATCH_MB``) sets the collectors' batch bytes within
1-64 MB; anything outside is refused before the service starts."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.cli.run_cmd import BATCH_MB_ENV, collector_settings
from hubsight.collector import CollectorSettings


def _option() -> click.Parameter:
    return next(p for p in cli.commands["run"].params if p.name == "batch_mb")


def test_the_default_is_the_collectors_default() -> None:
    default = _option().default
    assert isinstance(default, float)
    assert default * 1024 * 1024 == CollectorSettings().max_batch_bytes == 16 * 1024**2


@pytest.mark.parametrize("value", ["1", "64"])
def test_the_edges_are_accepted(value: str) -> None:
    option = _option()
    assert option.type.convert(value, option, None) == float(value)


@pytest.mark.parametrize(
    ("batch_mb", "expected"), [(1, 1024**2), (64, 64 * 1024**2), (2.5, 2_621_440)]
)
def test_megabytes_become_the_collectors_batch_bytes(batch_mb: float, expected: int) -> None:
    settings = collector_settings(30.0, batch_mb)
    assert settings.max_batch_bytes == expected
    assert settings.no_data_after_s == 30.0


@pytest.mark.parametrize("value", ["0.99", "64.01", "0"])
def test_a_batch_size_outside_1_to_64_mb_is_refused(data_dir: Path, value: str) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "run", "--batch-mb", value])
    assert result.exit_code == 2
    assert "--batch-mb" in result.output
    assert "1<=x<=64" in result.output


def test_a_batch_size_that_is_no_number_is_refused(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "run", "--batch-mb", "lots"])
    assert result.exit_code == 2
    assert "'lots' is not a valid float" in result.output


def test_the_environment_variable_is_checked_the_same_way(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "run"], env={BATCH_MB_ENV: "100"}
    )
    assert result.exit_code == 2
    assert "1<=x<=64" in result.output
