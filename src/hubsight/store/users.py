"""Console accounts, sign-in sessions and API tokens in the catalog's SQLite file.

Passwords are kept as argon2id hashes. Session ids and API tokens are random and only their
SHA-256 is stored, so a copy of the database opens no session. The CLI writes accounts here while
``hubsight run`` reads them: SQLite lets both processes share the file.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hubsight.errors import AlreadyExistsError, ConfigError, NotFoundError
from hubsight.store.catalog import CATALOG_FILE
from hubsight.store.sqlite import connect

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD = 12
SESSION_SECONDS = 12 * 3600
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
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


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


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class UserStore:
    """Accounts, sessions and tokens in ``<data_dir>/hubsight.sqlite3``."""

    def __init__(self, data_dir: Path, hasher: PasswordHasher | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / CATALOG_FILE
        self._hasher = hasher or PasswordHasher()
        # Verifying an unknown name against this hash costs what a real check costs, so the
        # time of a failed sign-in does not tell which names exist.
        self._decoy = self._hasher.hash(secrets.token_hex(16))
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def create(self, name: str, password: str, role: Role) -> Account:
        """Add an account; the name must be free and the password long enough."""
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
        with self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO console_users (name, role, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, role, self._hasher.hash(password), time.time()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(
                    f"a user named '{name}' exists", hint="choose another name"
                ) from None
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
        """Remove an account with its sessions and tokens."""
        with self._connect() as db:
            if db.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError(f"no user named '{name}'", hint="the Users list shows them")

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

    def open_session(self, account: Account) -> tuple[str, Session]:
        """A new session: the id for the cookie (shown once) and the session."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self._connect() as db:
            db.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
            db.execute(
                "INSERT INTO console_sessions (id_hash, name, csrf, expires_at) VALUES (?,?,?,?)",
                (_digest(session_id), account.name, csrf, now + SESSION_SECONDS),
            )
        return session_id, Session(account, csrf)

    def session(self, session_id: str) -> Session | None:
        """The live session with this id, if any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT u.name, u.role, s.csrf FROM console_sessions s "
                "JOIN console_users u ON u.name = s.name WHERE s.id_hash = ? AND s.expires_at > ?",
                (_digest(session_id), time.time()),
            ).fetchone()
        return Session(Account(row[0], row[1]), row[2]) if row else None

    def close_session(self, session_id: str) -> None:
        """Sign a session out."""
        with self._connect() as db:
            db.execute("DELETE FROM console_sessions WHERE id_hash = ?", (_digest(session_id),))

    def issue_token(self, name: str, label: str) -> str:
        """A new API token for an account, shown only this once."""
        token = "hs_" + secrets.token_urlsafe(32)
        with self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO api_tokens (token_hash, name, label, created_at) VALUES (?,?,?,?)",
                    (_digest(token), name, label, time.time()),
                )
            except sqlite3.IntegrityError:
                raise NotFoundError(
                    f"no user named '{name}'", hint="create the user first"
                ) from None
        return token

    def token_account(self, token: str) -> Account | None:
        """The account an API token belongs to, if it is valid."""
        with self._connect() as db:
            row = db.execute(
                "SELECT u.name, u.role FROM api_tokens t JOIN console_users u ON u.name = t.name "
                "WHERE t.token_hash = ?",
                (_digest(token),),
            ).fetchone()
        return Account(row[0], row[1]) if row else None
