"""The detection database: its write-ahead log stays bounded however much is written, and a
file a newer release wrote is refused untouched."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from hubsight.detect.db import SCHEMA_VERSION, WAL_LIMIT_BYTES, DetectDB
from hubsight.errors import StoreError

_MB = 1024 * 1024


def test_the_log_is_cut_back_after_a_large_batch_and_nothing_written_is_lost(
    tmp_path: Path,
) -> None:
    db = DetectDB.in_dir(tmp_path)
    wal = tmp_path / "detect.sqlite3-wal"
    # One batch larger than the limit (a burst after an outage), then the usual small ones.
    large = [("r", 0.0, os.urandom(_MB)) for _ in range(WAL_LIMIT_BYTES // _MB + 4)]
    db.executemany("INSERT INTO window_batches VALUES (?, ?, ?)", large)
    assert wal.stat().st_size > WAL_LIMIT_BYTES
    for index in range(3):
        db.execute("INSERT INTO window_batches VALUES (?, ?, ?)", ("r", index + 1.0, b"x" * 100))
    # Without the limit the file would keep the size the large batch gave it, for good.
    assert wal.stat().st_size <= WAL_LIMIT_BYTES
    rows = db.rows("SELECT count(*) AS n, sum(length(body)) AS size FROM window_batches")
    assert (rows[0]["n"], rows[0]["size"]) == (len(large) + 3, len(large) * _MB + 300)
    db.close()
    reopened = DetectDB.in_dir(tmp_path)
    assert reopened.rows("SELECT count(*) AS n FROM window_batches")[0]["n"] == len(large) + 3
    reopened.close()


def test_a_database_a_newer_release_wrote_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "detect.sqlite3"
    DetectDB(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="written by a newer hubsight") as caught:
        DetectDB(path)
    assert f"has schema version {SCHEMA_VERSION + 1}" in caught.value.message
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()
