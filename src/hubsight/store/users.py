"""Console accounts and sign-in sessions in the catalog's SQLite file; their API tokens too.

Passwords are kept as argon2id hashes. Session ids are random and only their SHA-256 is stored,
so a copy of the database opens no session. The CLI writes accounts here while ``hubsight run``
reads them: SQLite lets both processes share the file. Failed sign-ins are counted here too, so a
restart of ``hubsight run`` does not hand an attacker a fresh set of guesses. API tokens have
their own module (``hubsight.store.tokens``); ``UserStore`` holds them through ``ApiTokens``.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hubsight.errors import AlreadyExistsError, ConfigError, NotFoundError
from hubsight.store.catalog import CATALOG_FILE, CATALOG_VERSION
from hubsight.store.credentials import ROLES, Account, Role, epoch_iso, secret_digest
from hubsight.store.sqlite import add_columns, claim_version
from hubsight.store.tokens import (
    DEFAULT_TOKEN_DAYS,
    ENDED_TOKENS_KEPT_DAYS,
    LAST_USE_EVERY_S,
    MAX_TOKEN_DAYS,
    ApiTokens,
    TokenEnded,
    TokenInfo,
    create_token_table,
    token_id,
)

# What callers import from here: the accounts' and sessions' own names, and (as before tokens
# and credentials had their own modules) the token and credential names they used to find here.
__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "ENDED_TOKENS_KEPT_DAYS",
    "HISTORY_KEPT",
    "LAST_USE_EVERY_S",
    "MAX_TOKEN_DAYS",
    "MIN_PASSWORD",
    "ROLES",
    "Account",
    "Role",
    "Session",
    "SessionExpired",
    "SessionLimits",
    "TokenEnded",
    "TokenInfo",
    "UserStore",
    "epoch_iso",
    "secret_digest",
    "token_id",
]

MIN_PASSWORD = 12
# An ended session's row stays this long, so a browser that comes back is told it expired.
_ENDED_KEPT_S = 24 * 3600
# \Z, not $: "$" also matches before a final newline, which let "ana\n" pass for a name.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at REAL NOT NULL,
    last_seen REAL NOT NULL DEFAULT 0
);
-- When each deleted account's name was last deleted: what it owned before then (saved queries)
-- is no one's, even once a new account takes the name.
CREATE TABLE IF NOT EXISTS deleted_accounts (
    name TEXT PRIMARY KEY,
    deleted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
CREATE TABLE IF NOT EXISTS query_history (
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    search TEXT NOT NULL,
    ran_at REAL NOT NULL,
    PRIMARY KEY (name, search)
);
CREATE INDEX IF NOT EXISTS query_history_recent ON query_history (name, ran_at);
"""
# Searches remembered per account (Log Search's history); older ones are forgotten.
HISTORY_KEPT = 50


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: whose it is and the CSRF token its forms must send back."""

    account: Account
    csrf: str


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a session lives: ``idle_s`` without a request, ``max_s`` after sign-in at most."""

    idle_s: float = 30 * 60
    max_s: float = 12 * 3600


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """A session that ended on its own: ``idle`` (no request for too long) or ``max`` (too old)."""

    reason: Literal["idle", "max"]


class UserStore(ApiTokens):
    """Accounts, sessions and (from ``ApiTokens``) tokens in ``<data_dir>/hubsight.sqlite3``."""

    def __init__(
        self,
        data_dir: Path,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / CATALOG_FILE
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        with self._connect() as db:
            claim_version(db, self.path, CATALOG_VERSION)
            db.executescript(_SCHEMA)
            add_columns(
                db,
                "console_sessions",
                {"last_seen": "REAL NOT NULL DEFAULT 0"},
                # Open sessions of files from before the idle timeout count as active now
                # rather than all ending at the upgrade.
                "UPDATE console_sessions SET last_seen = ?",
                (self._clock(),),
            )
            create_token_table(db, self._clock())

    def now(self) -> float:
        """The store's clock (epoch seconds), by which tokens and sessions end."""
        return self._clock()

    def create(
        self,
        name: str,
        password: str,
        role: Role,
        *,
        claim: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Account:
        """Add an account; the name must be free and the password long enough.

        ``claim`` runs first in the same write transaction and refuses the account by raising:
        a setup link is spent this way, so two browsers cannot both use it.
        """
        if not _NAME.match(name):
            raise ConfigError(
                f"'{name}' is not a valid user name",
                hint="use up to 64 ASCII letters, digits, '.', '_', '@' or '-', starting with a "
                "letter or digit",
            )
        if role not in ROLES:
            raise ConfigError(f"unknown role '{role}'", hint="use admin or analyst")
        if len(password) < MIN_PASSWORD:
            raise ConfigError(
                f"the password is shorter than {MIN_PASSWORD} characters",
                hint="choose a longer password (a passphrase of several words works well)",
            )
        password_hash = self._hasher.hash(password)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if claim is not None:
                    claim(db)
                db.execute(
                    "INSERT INTO console_users (name, role, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, role, password_hash, self._clock()),
                )
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise AlreadyExistsError(
                    f"a user named '{name}' exists", hint="choose another name"
                ) from None
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return Account(name, role)

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        with self._connect() as db:
            rows = db.execute("SELECT name, role FROM console_users ORDER BY name").fetchall()
        return [Account(name, role) for name, role in rows]

    def has_admin(self) -> bool:
        """Whether any admin account exists."""
        return any(a.role == "admin" for a in self.accounts())

    def delete(self, name: str) -> None:
        """Remove an account with its sessions and tokens; when, is kept (``deleted_names``)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount == 0:
                db.execute("ROLLBACK")
                raise NotFoundError(f"no user named '{name}'", hint="the Users list shows them")
            db.execute(
                "INSERT INTO deleted_accounts (name, deleted_at) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at",
                (name, self._clock()),
            )
            db.execute("COMMIT")

    def deleted_names(self) -> dict[str, float]:
        """Each deleted account's name, with when (epoch seconds) it was last deleted."""
        with self._connect() as db:
            return dict(db.execute("SELECT name, deleted_at FROM deleted_accounts").fetchall())

    @cached_property
    def _decoy(self) -> str:
        # Verifying an unknown name against this hash costs what a real check costs, so the
        # time of a failed sign-in does not tell which names exist. Made at the first check
        # rather than on opening: the CLI and the owner's socket open the store to check none.
        return self._hasher.hash(secrets.token_hex(16))

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when the password is right, else None."""
        # Taken before the look-up, so the first check costs the same for any name.
        decoy = self._decoy
        with self._connect() as db:
            row = db.execute(
                "SELECT role, password_hash FROM console_users WHERE name = ?", (name,)
            ).fetchone()
        try:
            self._hasher.verify(row[1] if row else decoy, password)
        except (VerificationError, InvalidHashError):
            return None
        return Account(name, row[0]) if row else None

    def open_session(
        self, account: Account, limits: SessionLimits | None = None
    ) -> tuple[str, Session]:
        """A new session: the id for the cookie (shown once) and the session."""
        limits = limits or SessionLimits()
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        with self._connect() as db:
            db.execute(
                "DELETE FROM console_sessions WHERE expires_at < ? OR last_seen < ?",
                (now - _ENDED_KEPT_S, now - limits.idle_s - _ENDED_KEPT_S),
            )
            db.execute(
                "INSERT INTO console_sessions (id_hash, name, csrf, expires_at, last_seen) "
                "VALUES (?, ?, ?, ?, ?)",
                (secret_digest(session_id), account.name, csrf, now + limits.max_s, now),
            )
        return session_id, Session(account, csrf)

    def session(
        self, session_id: str, limits: SessionLimits | None = None
    ) -> Session | SessionExpired | None:
        """The live session with this id, why it ended, or None for an id not (or no longer) known.

        Each look-up counts as activity: it moves the idle deadline on (written at most every
        tenth of the idle time, so a busy page does not write on every request).
        """
        limits = limits or SessionLimits()
        now = self._clock()
        id_hash = secret_digest(session_id)
        with self._connect() as db:
            row = db.execute(
                "SELECT u.name, u.role, s.csrf, s.expires_at, s.last_seen FROM console_sessions s "
                "JOIN console_users u ON u.name = s.name WHERE s.id_hash = ?",
                (id_hash,),
            ).fetchone()
            if row is None:
                return None
            name, role, csrf, expires_at, last_seen = row
            if expires_at <= now:
                return SessionExpired("max")
            if last_seen + limits.idle_s <= now:
                return SessionExpired("idle")
            if now - last_seen >= min(60.0, limits.idle_s / 10):
                db.execute(
                    "UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash)
                )
        return Session(Account(name, role), csrf)

    def close_session(self, session_id: str) -> None:
        """Sign a session out."""
        with self._connect() as db:
            db.execute(
                "DELETE FROM console_sessions WHERE id_hash = ?", (secret_digest(session_id),)
            )

    def remember_search(self, name: str, search: Mapping[str, Any]) -> None:
        """Put a search an account ran (query and scope) first in its history.

        The same search run again moves up instead of being listed twice; beyond
        ``HISTORY_KEPT`` the oldest are forgotten.
        """
        text = json.dumps(search, sort_keys=True, separators=(",", ":"))
        with self._connect() as db:
            db.execute(
                "INSERT INTO query_history (name, search, ran_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name, search) DO UPDATE SET ran_at = excluded.ran_at",
                (name, text, self._clock()),
            )
            db.execute(
                "DELETE FROM query_history WHERE name = ? AND rowid NOT IN (SELECT rowid "
                "FROM query_history WHERE name = ? ORDER BY ran_at DESC, rowid DESC LIMIT ?)",
                (name, name, HISTORY_KEPT),
            )

    def search_history(self, name: str, limit: int = HISTORY_KEPT) -> list[dict[str, Any]]:
        """An account's searches, newest first, each with ``ran_at`` (seconds since the epoch)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT search, ran_at FROM query_history WHERE name = ? "
                "ORDER BY ran_at DESC, rowid DESC LIMIT ?",
                (name, limit),
            ).fetchall()
        return [json.loads(search) | {"ran_at": ran_at} for search, ran_at in rows]

    def forget_searches(self, name: str) -> None:
        """Empty an account's search history."""
        with self._connect() as db:
            db.execute("DELETE FROM query_history WHERE name = ?", (name,))

    def login_wait(self, keys: tuple[str, ...], attempts: int, window_s: float) -> float:
        """Seconds until a sign-in is allowed again for these keys (0 when it is now)."""
        now = self._clock()
        wait = 0.0
        with self._connect() as db:
            for key in keys:
                (count,) = db.execute(
                    "SELECT count(*) FROM login_failures WHERE key = ? AND at > ?",
                    (key, now - window_s),
                ).fetchone()
                if count < attempts:
                    continue
                # Allowed again once the failures in the window drop below ``attempts``.
                (at,) = db.execute(
                    "SELECT at FROM login_failures WHERE key = ? AND at > ? "
                    "ORDER BY at LIMIT 1 OFFSET ?",
                    (key, now - window_s, count - attempts),
                ).fetchone()
                wait = max(wait, at + window_s - now)
        return wait

    def login_failed(self, keys: tuple[str, ...], window_s: float) -> None:
        """Count a failed sign-in against each key (and forget failures older than the window)."""
        now = self._clock()
        with self._connect() as db:
            db.execute("DELETE FROM login_failures WHERE at < ?", (now - window_s,))
            db.executemany(
                "INSERT INTO login_failures (key, at) VALUES (?, ?)", [(k, now) for k in keys]
            )

    def login_succeeded(self, key: str) -> None:
        """Forget the failed sign-ins counted against ``key``."""
        with self._connect() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (key,))
