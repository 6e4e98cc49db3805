"""Configuration and state that are not events: event sources and their last known health.

They live in SQLite beside the event store, not in ClickHouse: they are a few rows that are
updated in place, need transactions, and must be readable and writable by the CLI while
``hubsight run`` holds the ClickHouse directory (SQLite allows several processes at once).
Secrets are stored only as Fernet tokens.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from hubsight.errors import AlreadyExistsError, NotFoundError
from hubsight.sources.config import SourceConfig, make_source
from hubsight.store.retention import Policy, checked, checked_case_days, default_policy
from hubsight.store.sqlite import claim_version, connect
from hubsight.store.vault import Vault

CATALOG_FILE = "hubsight.sqlite3"
# Raised when a release changes the tables in a way an older one cannot read (users.py's too).
# 2: API tokens expire and can be revoked; an older release would accept every one of them.
CATALOG_VERSION = 2
_SECRET_FIELDS = ("connection_string", "password")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    secrets TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retention (
    log_set TEXT PRIMARY KEY,
    days INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
-- How long closed alerts and investigations are kept (days after they last changed); no row or
-- NULL: for ever.
CREATE TABLE IF NOT EXISTS case_retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    days INTEGER,
    updated_at REAL NOT NULL
);
-- The event store's parts ClickHouse set aside, as ``hubsight run`` found them when it started.
CREATE TABLE IF NOT EXISTS damaged_parts (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    parts TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS source_health (
    name TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class Catalog:
    """Event sources and their health in ``<data_dir>/hubsight.sqlite3``."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / CATALOG_FILE
        self._vault = Vault(data_dir)
        with self._connect() as db:
            claim_version(db, self.path, CATALOG_VERSION)
            db.executescript(_SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def _split(self, config: SourceConfig) -> tuple[str, str]:
        data = config.model_dump(mode="python")
        secrets: dict[str, str] = {}
        for key in _SECRET_FIELDS:
            value = data["profile"].pop(key, None)
            if isinstance(value, SecretStr):
                secrets[key] = value.get_secret_value()
        plain = json.dumps(config.model_dump(mode="json") | {"profile": _jsonable(data["profile"])})
        return plain, self._vault.encrypt(json.dumps(secrets))

    def _join(self, plain: str, token: str) -> SourceConfig:
        data = json.loads(plain)
        data["profile"].update(json.loads(self._vault.decrypt(token)))
        return make_source(data, stored=True)

    def add(self, config: SourceConfig) -> None:
        """Store a new source; its name must be free."""
        plain, token = self._split(config)
        now = time.time()
        with self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO sources (name, config, secrets, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (config.name, plain, token, now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(
                    f"an event source named {config.name!r} exists already",
                    hint="choose another name, or `hubsight source remove` it first",
                ) from None

    def replace(self, config: SourceConfig) -> None:
        """Overwrite an existing source (a running collector restarts with it)."""
        plain, token = self._split(config)
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE sources SET config = ?, secrets = ?, version = version + 1, "
                "updated_at = ? WHERE name = ?",
                (plain, token, time.time(), config.name),
            )
        if cursor.rowcount == 0:
            raise _not_found(config.name)

    def get(self, name: str) -> SourceConfig:
        """The source called ``name``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT config, secrets FROM sources WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise _not_found(name)
        return self._join(row[0], row[1])

    def all(self) -> list[SourceConfig]:
        """All sources, by name."""
        with self._connect() as db:
            rows = db.execute("SELECT config, secrets FROM sources ORDER BY name").fetchall()
        return [self._join(config, token) for config, token in rows]

    def versions(self) -> dict[str, int]:
        """Each source's version: it changes whenever the source does."""
        with self._connect() as db:
            return dict(db.execute("SELECT name, version FROM sources").fetchall())

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a source."""
        self.replace(self.get(name).model_copy(update={"enabled": enabled}))

    def remove(self, name: str) -> None:
        """Delete a source (its stored events stay searchable under its log name)."""
        with self._connect() as db:
            cursor = db.execute("DELETE FROM sources WHERE name = ?", (name,))
            db.execute("DELETE FROM source_health WHERE name = ?", (name,))
        if cursor.rowcount == 0:
            raise _not_found(name)

    def save_health(self, snapshots: list[dict[str, Any]]) -> None:
        """Persist the latest health of each source."""
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "INSERT INTO source_health (name, snapshot, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET snapshot = excluded.snapshot, "
                "updated_at = excluded.updated_at",
                [(s["name"], json.dumps(s), now) for s in snapshots],
            )

    def load_health(self) -> dict[str, tuple[dict[str, Any], float]]:
        """The last persisted health of each source and when it was written (epoch seconds)."""
        with self._connect() as db:
            rows = db.execute("SELECT name, snapshot, updated_at FROM source_health").fetchall()
        return {name: (json.loads(snapshot), updated) for name, snapshot, updated in rows}

    def save_damaged_parts(self, parts: list[dict[str, Any]]) -> None:
        """Replace the list of the event store's damaged parts (``DamagedPart.as_json``)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO damaged_parts (id, parts, updated_at) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET parts = excluded.parts, "
                "updated_at = excluded.updated_at",
                (json.dumps(parts), time.time()),
            )

    def load_damaged_parts(self) -> list[dict[str, Any]]:
        """The damaged parts ``hubsight run`` found when it last started."""
        with self._connect() as db:
            row = db.execute("SELECT parts FROM damaged_parts WHERE id = 1").fetchone()
        return list(json.loads(row[0])) if row else []

    def retention(self) -> Policy:
        """Days kept per log set: the defaults, overridden by what was set."""
        with self._connect() as db:
            rows = db.execute("SELECT log_set, days FROM retention").fetchall()
        return default_policy() | {log_set: int(days) for log_set, days in rows}

    def set_retention(self, log_set: str, days: int) -> None:
        """Keep ``log_set``'s events ``days`` days (checked; applied by the running service)."""
        log_set, days = checked(log_set, days)
        with self._connect() as db:
            db.execute(
                "INSERT INTO retention (log_set, days, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(log_set) DO UPDATE SET days = excluded.days, "
                "updated_at = excluded.updated_at",
                (log_set, days, time.time()),
            )

    def case_retention(self) -> int | None:
        """Days closed alerts and investigations are kept after they last changed; None: for
        ever (the default, so that an upgrade deletes no one's cases)."""
        with self._connect() as db:
            row = db.execute("SELECT days FROM case_retention WHERE id = 1").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def set_case_retention(self, days: int | None) -> None:
        """Keep closed alerts and investigations ``days`` days (None: for ever); checked."""
        days = checked_case_days(days)
        with self._connect() as db:
            db.execute(
                "INSERT INTO case_retention (id, days, updated_at) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET days = excluded.days, "
                "updated_at = excluded.updated_at",
                (days, time.time()),
            )


def _jsonable(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if k not in _SECRET_FIELDS}


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"no event source named {name!r}", hint="`hubsight source list` shows the sources"
    )
