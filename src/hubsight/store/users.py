"""Console accounts, sign-in sessions and API tokens in the catalog's SQLite file.

Passwords are kept as argon2id hashes. Session ids and API tokens are random and only their
SHA-256 is stored, so a copy of the database opens no session. An API token expires (90 days
unless asked otherwise, a year at most) and can be revoked; it is known afterwards by its id,
the first 12 hex digits of that hash, never by its secret. The CLI writes accounts here while
``hubsight run`` reads them: SQLite lets both processes share the file. Failed sign-ins are counted
here too, so a restart of ``hubsight run`` does not hand an attacker a fresh set of guesses.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hubsight.errors import AlreadyExistsError, ConfigError, NotFoundError
from hubsight.store.catalog import CATALOG_FILE, CATALOG_VERSION
from hubsight.store.sqlite import claim_version, connect

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD = 12
# An ended session's row stays this long, so a browser that comes back is told it expired.
_ENDED_KEPT_S = 24 * 3600
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
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
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL DEFAULT 0,
    last_used REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS query_history (
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    search TEXT NOT NULL,
    ran_at REAL NOT NULL,
    PRIMARY KEY (name, search)
);
CREATE INDEX IF NOT EXISTS query_history_recent ON query_history (name, ran_at);
"""
DEFAULT_TOKEN_DAYS = 90
# A token that is never renewed outlives the script, and the person, it was made for.
MAX_TOKEN_DAYS = 365
# An ended (expired or revoked) token stays listed this long, so that its owner sees why a script
# stopped; then housekeeping deletes it (``hubsight.store.token_sweep``).
ENDED_TOKENS_KEPT_DAYS = 30
# Last use is written at most this often per token: a script polling the API several times a
# second would otherwise write to the file the CLI and every sign-in share on each request.
LAST_USE_EVERY_S = 60.0
_DAY_S = 86400.0
# Searches remembered per account (Log Search's history); older ones are forgotten.
HISTORY_KEPT = 50


@dataclass(frozen=True, slots=True)
class Account:
    """A console user: name and role."""

    name: str
    role: Role


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


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed: its id (from its hash), never its secret; times are epoch seconds."""

    id: str
    name: str
    label: str
    created_at: float
    expires_at: float
    last_used: float | None
    revoked_at: float | None

    def status(self, now: float) -> Literal["active", "expired", "revoked"]:
        """Whether it lets its account in at ``now``, and why not."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"

    @property
    def ended_at(self) -> float:
        """When it stopped (or will stop) letting its account in: revoked or expired, first."""
        return self.expires_at if self.revoked_at is None else min(self.revoked_at, self.expires_at)

    def as_dict(self, now: float) -> dict[str, str | None]:
        """As the API, the CLI's ``--json`` and Settings show it: ISO times and its status.

        ``deleted_after`` says when housekeeping deletes a token that ended (None while active).
        """
        status = self.status(now)
        return {
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "created_at": epoch_iso(self.created_at),
            "expires_at": epoch_iso(self.expires_at),
            "last_used": epoch_iso(self.last_used),
            "revoked_at": epoch_iso(self.revoked_at),
            "status": status,
            "deleted_after": None
            if status == "active"
            else epoch_iso(self.ended_at + ENDED_TOKENS_KEPT_DAYS * _DAY_S),
        }


def epoch_iso(epoch: float | None) -> str | None:
    """Epoch seconds as an ISO time in UTC to the second (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TokenEnded:
    """A known API token that no longer lets anyone in: it expired or was revoked."""

    token: TokenInfo
    reason: Literal["expired", "revoked"]


# A token's listed fields, in TokenInfo's order, from ``api_tokens t``.
_LISTED_FIELDS = (
    "substr(t.token_hash, 1, 12), t.name, t.label, t.created_at, t.expires_at, t.last_used, "
    "t.revoked_at"
)


def secret_digest(secret: str) -> str:
    """What is stored of a secret (session id, API token, setup link): its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id(secret: str) -> str:
    """The id an API token is listed and revoked by: the start of its hash, not of its secret."""
    return secret_digest(secret)[:12]


class UserStore:
    """Accounts, sessions and tokens in ``<data_dir>/hubsight.sqlite3``."""

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
        # Verifying an unknown name against this hash costs what a real check costs, so the
        # time of a failed sign-in does not tell which names exist.
        self._decoy = self._hasher.hash(secrets.token_hex(16))
        with self._connect() as db:
            claim_version(db, self.path, CATALOG_VERSION)
            db.executescript(_SCHEMA)
            _add_columns(
                db,
                "console_sessions",
                {"last_seen": "REAL NOT NULL DEFAULT 0"},
                # Open sessions of files from before the idle timeout count as active now
                # rather than all ending at the upgrade.
                "UPDATE console_sessions SET last_seen = ?",
                (self._clock(),),
            )
            _add_columns(
                db,
                "api_tokens",
                {
                    "expires_at": "REAL NOT NULL DEFAULT 0",
                    "last_used": "REAL",
                    "revoked_at": "REAL",
                },
                # Tokens from before expiry get the default lifetime from the upgrade on,
                # so no script stops on the day of the upgrade.
                "UPDATE api_tokens SET expires_at = ?",
                (self._clock() + DEFAULT_TOKEN_DAYS * _DAY_S,),
            )

    def now(self) -> float:
        """The store's clock (epoch seconds), by which tokens and sessions end."""
        return self._clock()

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

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
                hint="use up to 64 letters, digits, '.', '_', '@' or '-'",
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

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when the password is right, else None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT role, password_hash FROM console_users WHERE name = ?", (name,)
            ).fetchone()
        try:
            self._hasher.verify(row[1] if row else self._decoy, password)
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

    def issue_token(self, name: str, label: str, *, days: int = DEFAULT_TOKEN_DAYS) -> str:
        """A new API token for an account, valid ``days``; its secret is shown only this once."""
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise ConfigError(
                f"an API token lasts 1 to {MAX_TOKEN_DAYS} days, not {days}",
                hint=f"ask for {MAX_TOKEN_DAYS} days at most and issue a new token before then",
            )
        token = "hs_" + secrets.token_urlsafe(32)
        now = self._clock()
        with self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO api_tokens (token_hash, name, label, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (secret_digest(token), name, label, now, now + days * _DAY_S),
                )
            except sqlite3.IntegrityError:
                raise NotFoundError(
                    f"no user named '{name}'", hint="create the user first"
                ) from None
        return token

    def token_account(self, token: str) -> Account | TokenEnded | None:
        """The account an API token lets in, why it no longer does, or None for an unknown one.

        A use is recorded as the token's last use, at most every ``LAST_USE_EVERY_S``.
        """
        now = self._clock()
        token_hash = secret_digest(token)
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_LISTED_FIELDS}, u.role FROM api_tokens t "  # noqa: S608
                "JOIN console_users u ON u.name = t.name WHERE t.token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            info, role = TokenInfo(*row[:-1]), row[-1]
            status = info.status(now)
            if status != "active":
                return TokenEnded(info, status)
            if info.last_used is None or now - info.last_used >= LAST_USE_EVERY_S:
                db.execute(
                    "UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", (now, token_hash)
                )
        return Account(info.name, role)

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        """Every API token (of account ``name`` only when given), by account, newest first."""
        where, params = ("WHERE t.name = ?", (name,)) if name is not None else ("", ())
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_LISTED_FIELDS} FROM api_tokens t {where} "  # noqa: S608
                "ORDER BY t.name, t.created_at DESC, t.token_hash",
                params,
            ).fetchall()
        return [TokenInfo(*row) for row in rows]

    def token(self, token_id: str) -> TokenInfo:
        """The API token with this id; ``NotFoundError`` when there is none."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_LISTED_FIELDS} FROM api_tokens t "  # noqa: S608
                "WHERE substr(t.token_hash, 1, 12) = ?",
                (token_id.lower(),),
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no API token with id '{token_id}'",
                hint="list the tokens (Settings, or `hubsight users tokens`) to see their ids",
            )
        return TokenInfo(*row)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke an API token at once (kept, listed as revoked); the token as it is now."""
        found = self.token(token_id)
        if found.revoked_at is None:
            with self._connect() as db:
                db.execute(
                    "UPDATE api_tokens SET revoked_at = ? WHERE substr(token_hash, 1, 12) = ?",
                    (self._clock(), found.id),
                )
        return self.token(token_id)

    def delete_token(self, token_id: str) -> None:
        """Delete an API token (housekeeping, once it has ended); gone from the list too."""
        with self._connect() as db:
            db.execute("DELETE FROM api_tokens WHERE substr(token_hash, 1, 12) = ?", (token_id,))

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


def _add_columns(
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
