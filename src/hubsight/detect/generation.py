"""The settings generation: a counter in the detection database bumped by every settings change.

Rule settings and notification targets are changed by the API inside ``hubsight run`` and by the
CLI in other processes, all through the same SQLite file. A running engine compares this one
number (and ``detect.toml``'s modification time) every second or so instead of re-reading every
setting, and rebuilds its rules and channels only when it moved.
"""

from __future__ import annotations

import sqlite3

from hubsight.detect.db import DetectDB

GENERATION_KEY = "settings_generation"


def bump_generation(conn: sqlite3.Connection) -> None:
    """Count one settings change; call inside the transaction that makes the change."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (GENERATION_KEY,),
    )


def settings_generation(db: DetectDB) -> int:
    """How many settings changes the database has seen."""
    value = db.get_meta(GENERATION_KEY)
    return int(value) if value is not None else 0
