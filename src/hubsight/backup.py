"""``hubsight backup`` and ``restore``: a consistent copy of a data directory and its return.

A backup is a directory: ``clickhouse/`` (ClickHouse ``BACKUP`` of every table), the SQLite files
copied with SQLite's online backup (sources and their encrypted secrets, users, retention;
alerts, investigations, detection state), the secret key file that decrypts the secrets,
``detect.toml`` and imported rules, and ``hubsight-backup.json`` (what it holds, counts to check
a restore against). Taken while ``hubsight run`` collects, each store is consistent in itself;
events stored after the ClickHouse copy are not in it. The directory holds the secret key: it is
made readable by its owner only, and must be kept like the key itself.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubsight import __version__
from hubsight.detect.db import DB_NAME
from hubsight.detect.ruleset import rules_dir_default
from hubsight.detect.settings import CONFIG_NAME
from hubsight.errors import ConfigError, StoreError
from hubsight.store.backends import StoreSettings, open_store, restore_store
from hubsight.store.base import EventStore
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.vault import KEY_FILE

MANIFEST = "hubsight-backup.json"
FORMAT = 1
_SQLITE = (CATALOG_FILE, DB_NAME)
_FILES = (KEY_FILE, CONFIG_NAME)
_EVENTS = "clickhouse"


def create(data_dir: Path, store: EventStore, target: Path) -> dict[str, Any]:
    """Copy ``data_dir`` (its events through ``store``) into the new directory ``target``."""
    store.check_backup()  # a store it cannot copy is refused before anything is made or read
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"{target} exists and is not empty", hint="give a new or empty directory to back up to"
        )
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)
    counts = _event_counts(store)
    store.backup(target / _EVENTS)
    copied = [_EVENTS]
    for name in _SQLITE:
        if (data_dir / name).exists():
            _sqlite_copy(data_dir / name, target / name)
            copied.append(name)
    copied += _copy_files(data_dir, target)
    manifest = {
        "format": FORMAT,
        "hubsight": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "events_by_log_set": counts,
        "contents": copied,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(source: Path, data_dir: Path) -> dict[str, Any]:
    """Bring the backup in ``source`` back into ``data_dir``, which must hold no data yet."""
    manifest = read_manifest(source)
    taken = [n for n in (*_SQLITE, _EVENTS) if _holds_data(data_dir / n)]
    if taken:
        raise ConfigError(
            f"{data_dir} already holds hubsight data ({', '.join(taken)})",
            hint="restore into a new --data-dir, or move this one away first",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    restore_store(StoreSettings(data_dir=data_dir), source / _EVENTS)
    for name in manifest["contents"]:
        if name in _SQLITE or name in _FILES:
            shutil.copy2(source / name, data_dir / name)
        elif name != _EVENTS:
            shutil.copytree(source / name, data_dir / name)
    if (data_dir / KEY_FILE).exists():
        (data_dir / KEY_FILE).chmod(0o600)
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        counts = _event_counts(store)
    finally:
        store.close()
    if counts != manifest["events_by_log_set"]:
        raise StoreError(
            f"the restored store holds {counts}, the backup said {manifest['events_by_log_set']}",
            hint="the backup may be damaged: restore an earlier one",
        )
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a backup directory, checked."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{source} is not a hubsight backup ({MANIFEST} cannot be read: {exc})",
            hint="give the directory `hubsight backup DIR` wrote",
        ) from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(
            f"{source} was written by hubsight {manifest.get('hubsight')} in backup format "
            f"{manifest.get('format')}; this hubsight {__version__} reads format {FORMAT}",
            hint="restore it with the hubsight release that wrote it, or a newer one",
        )
    return manifest


def _event_counts(store: EventStore) -> dict[str, int]:
    rows = store.select("SELECT log_set, count() AS n FROM events GROUP BY log_set ORDER BY 1")
    return {row["log_set"]: int(row["n"]) for row in rows}


def _sqlite_copy(source: Path, target: Path) -> None:
    # SQLite's online backup: a consistent copy while ``run`` writes (it retries pages that
    # change during the copy).
    with sqlite3.connect(source, timeout=30) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    os.chmod(target, 0o600)


def _copy_files(data_dir: Path, target: Path) -> list[str]:
    copied = []
    for name in _FILES:
        if (data_dir / name).exists():
            shutil.copy2(data_dir / name, target / name)
            copied.append(name)
    rules = rules_dir_default(data_dir)
    if rules.is_dir():
        shutil.copytree(rules, target / rules.name)
        copied.append(rules.name)
    return copied


def _holds_data(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))
