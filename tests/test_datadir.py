"""The data directory and everything in it are closed to everyone but the owner."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hubsight.datadir import close_data_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_open_data_directory_is_tightened_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "clickhouse" / "store").mkdir(parents=True)
    for folder in (data, data / "clickhouse", data / "clickhouse" / "store"):
        folder.chmod(0o755)  # whatever this process's umask is
    for name in ("hubsight.sqlite3", "clickhouse/store/part.bin"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    (data / "owner-only").write_text("x")
    (data / "owner-only").chmod(0o600)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    with caplog.at_level(logging.WARNING):
        assert close_data_dir(data) == 5  # 3 directories, 2 files; the 0600 file was closed
    assert "closed 5 paths" in caplog.text
    for path in (data, data / "clickhouse", data / "clickhouse" / "store"):
        assert _mode(path) == 0o700
    assert _mode(data / "hubsight.sqlite3") == _mode(data / "clickhouse/store/part.bin") == 0o600
    assert _mode(outside) == 0o644  # a link's target is not ours to change
    caplog.clear()
    assert close_data_dir(data) == 0
    assert caplog.text == ""


def test_a_file_gone_between_listing_and_closing_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A killed run restarted while a reader closes hubsight.sqlite3: SQLite removes the -shm
    # file after os.walk listed it, and run stopped at start with FileNotFoundError.
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "hubsight.sqlite3").write_text("x")
    (data / "hubsight.sqlite3").chmod(0o644)
    listed: list[tuple[str, list[str], list[str]]] = [
        (str(data), [], ["hubsight.sqlite3", "hubsight.sqlite3-shm"])
    ]
    monkeypatch.setattr(os, "walk", lambda top: iter(listed))
    assert close_data_dir(data) == 1
    assert _mode(data / "hubsight.sqlite3") == 0o600


def test_a_new_data_directory_is_created_closed(tmp_path: Path) -> None:
    close_data_dir(tmp_path / "new" / "data")
    assert _mode(tmp_path / "new" / "data") == 0o700


def test_files_the_cli_creates_are_the_owners_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = os.environ | {"HS_PW": "a long enough password"}
    # A permissive umask in the parent: the process sets its own.
    script = "import os; os.umask(0o022); from hubsight.cli.main import main; main()"
    args = ["--data-dir", str(data), "users", "create-admin", "--name", "a", "--password-env"]
    made = subprocess.run(
        [sys.executable, "-c", script, *args, "HS_PW"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = [p for p in data.rglob("*") if not p.is_symlink()]
    assert created
    assert {_mode(p) for p in created if p.is_file()} == {0o600}
    assert {_mode(p) for p in [data, *created] if p.is_dir()} == {0o700}
