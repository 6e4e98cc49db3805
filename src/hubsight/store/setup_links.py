"""One-time setup links: the first admin is created in the browser instead of a second shell.

While the console has no account, ``hubsight run`` issues a link when it starts and prints it on
its terminal only. The link's secret is random and only its SHA-256 is stored (in the accounts'
SQLite file), so neither a copy of the file nor the log holds a usable link. A link works once,
for ``SETUP_LINK_S``, and only while no account exists; a newer link replaces the older ones.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Literal

from hubsight.store.sqlite import connect
from hubsight.store.users import Account, UserStore, secret_digest

SETUP_LINK_S = 15 * 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS setup_links (
    token_hash TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
)
"""
# Why a link creates no admin; "account" means the console has an account already.
Refusal = Literal["unknown", "used", "expired", "replaced", "account"]


@dataclass(frozen=True, slots=True)
class SetupRefused:
    """Why a setup link no longer creates the first admin, and since when (epoch seconds)."""

    reason: Refusal
    since: float | None = None


class _Refused(Exception):
    """Carries a refusal out of the account's write transaction, which it rolls back."""

    def __init__(self, refused: SetupRefused) -> None:
        super().__init__(refused.reason)
        self.refused = refused


@dataclass(frozen=True)
class SetupLinks:
    """The setup links of one accounts file; times come from the user store's clock."""

    users: UserStore
    lifetime_s: float = SETUP_LINK_S

    def __post_init__(self) -> None:
        with connect(self.users.path) as db:
            db.execute(_SCHEMA)

    def issue(self) -> tuple[str, float]:
        """A new link's secret (to print once, never to log) and when it expires."""
        secret = secrets.token_urlsafe(32)
        now = self.users.now()
        expires_at = now + self.lifetime_s
        with connect(self.users.path) as db:
            db.execute(
                "INSERT INTO setup_links (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
                (secret_digest(secret), now, expires_at),
            )
        return secret, expires_at

    def check(self, secret: str) -> SetupRefused | None:
        """Why the link cannot create the first admin now, or None when it can."""
        with connect(self.users.path) as db:
            return self._refusal(db, secret)

    def create_admin(self, secret: str, name: str, password: str) -> Account | SetupRefused:
        """Create the first admin and spend the link, both or neither; else why not.

        The name and password follow the rules of every account (``ConfigError`` otherwise,
        and the link stays usable).
        """

        def claim(db: sqlite3.Connection) -> None:
            refused = self._refusal(db, secret)
            if refused is not None:
                raise _Refused(refused)
            db.execute(
                "UPDATE setup_links SET used_at = ? WHERE token_hash = ?",
                (self.users.now(), secret_digest(secret)),
            )

        try:
            return self.users.create(name, password, "admin", claim=claim)
        except _Refused as exc:
            return exc.refused

    def _refusal(self, db: sqlite3.Connection, secret: str) -> SetupRefused | None:
        row = db.execute(
            "SELECT rowid, expires_at, used_at FROM setup_links WHERE token_hash = ?",
            (secret_digest(secret),),
        ).fetchone()
        if row is None:
            return SetupRefused("unknown")
        rowid, expires_at, used_at = row
        if used_at is not None:
            return SetupRefused("used", used_at)
        if db.execute("SELECT 1 FROM console_users LIMIT 1").fetchone() is not None:
            return SetupRefused("account")
        if self.users.now() >= expires_at:
            return SetupRefused("expired", expires_at)
        # By order of issue: two starts within the clock's resolution still replace.
        newer = db.execute(
            "SELECT min(created_at) FROM setup_links WHERE rowid > ?", (rowid,)
        ).fetchone()[0]
        return None if newer is None else SetupRefused("replaced", newer)
