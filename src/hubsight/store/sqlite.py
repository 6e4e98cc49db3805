"""Connections to the SQLite file that holds hubsight's configuration and state."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hubsight import __version__
from hubsight.errors import StoreError


def claim_version(db: sqlite3.Connection, path: Path, version: int) -> None:
    """Mark the file as of ``version`` (``PRAGMA user_version``); refuse one a newer hubsight
    wrote, whose tables this release may misread (a downgrade)."""
    if schema_version(db, path, version) < version:
        db.execute(f"PRAGMA user_version = {version:d}")


def schema_version(db: sqlite3.Connection, path: Path, version: int) -> int:
    """The file's schema version (``PRAGMA user_version``, 0 for a new file); refuse one a
    newer hubsight wrote than ``version``, whose tables this release may misread."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > version:
        raise StoreError(
            f"{path} has schema version {found}; this hubsight {__version__} knows up to "
            f"{version}: it was written by a newer hubsight",
            hint="run that release or a newer one (downgrades are not supported), or restore "
            "a backup taken before the upgrade",
        )
    return found


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """An autocommit connection in WAL mode, so the CLI and ``hubsight run`` share the file."""
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc) from exc


def sqlite_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A SQLite failure on ``path`` as a StoreError whose hint fits its cause."""
    text = str(exc)
    if "disk is full" in text or "disk I/O error" in text:
        hint = f"free space on the disk of {path.parent}; hubsight goes on by itself then"
    elif "not a database" in text or "malformed" in text:
        hint = "the file is damaged: run `hubsight doctor` to see what can be recovered"
    else:
        hint = f"check that {path.parent} is writable and not on a network share"
    return StoreError(f"{path.name}: {text}", hint=hint)


def add_columns(
    db: sqlite3.Connection,
    table: str,
    columns: dict[str, str],
    fill: str,
    params: tuple[object, ...],
) -> None:
    """Add ``columns`` to a table of a file from an older release and fill them in with ``fill``.

    The write lock keeps the CLI and ``hubsight run`` from both adding them.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = {name: ddl for name, ddl in columns.items() if name not in present}
        for name, ddl in missing.items():
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")
        if missing:
            db.execute(fill, params)
    except sqlite3.Error:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
