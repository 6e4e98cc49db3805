"""API tokens of console accounts, in the catalog's SQLite file beside the accounts.

A token is random and only its SHA-256 is stored, so a copy of the database lets no script in.
It expires (``DEFAULT_TOKEN_DAYS`` unless asked otherwise, ``MAX_TOKEN_DAYS`` at most) and can be
revoked; it is known afterwards by its id, the first 12 hex digits of that hash, never by its
secret. ``ApiTokens`` holds what is done with tokens and ``UserStore`` has it, so a token is
issued, checked, listed and revoked through the accounts' store; an ended token is deleted later
by housekeeping (``hubsight.store.token_sweep``).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hubsight.errors import ConfigError, NotFoundError
from hubsight.store.credentials import Account, epoch_iso, secret_digest
from hubsight.store.sqlite import add_columns, connect

DEFAULT_TOKEN_DAYS = 90
# A token that is never renewed outlives the script, and the person, it was made for.
MAX_TOKEN_DAYS = 365
# An ended (expired or revoked) token stays listed this long, so that its owner sees why a script
# stopped; then housekeeping deletes it (``hubsight.store.token_sweep``).
ENDED_TOKENS_KEPT_DAYS = 30
# Last use is written at most this often per token: a script polling the API several times a
# second would otherwise write to the file the CLI and every sign-in share on each request.
LAST_USE_EVERY_S = 60.0
DAY_S = 86400.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL DEFAULT 0,
    last_used REAL,
    revoked_at REAL
);
"""
# A token's listed fields, in TokenInfo's order, from ``api_tokens t``.
_LISTED_FIELDS = (
    "substr(t.token_hash, 1, 12), t.name, t.label, t.created_at, t.expires_at, t.last_used, "
    "t.revoked_at"
)


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
            else epoch_iso(self.ended_at + ENDED_TOKENS_KEPT_DAYS * DAY_S),
        }


@dataclass(frozen=True, slots=True)
class TokenEnded:
    """A known API token that no longer lets anyone in: it expired or was revoked."""

    token: TokenInfo
    reason: Literal["expired", "revoked"]


def token_id(secret: str) -> str:
    """The id an API token is listed and revoked by: the start of its hash, not of its secret."""
    return secret_digest(secret)[:12]


def create_token_table(db: sqlite3.Connection, now: float) -> None:
    """Create the tokens' table, or bring one from an older release up to date."""
    db.executescript(_SCHEMA)
    add_columns(
        db,
        "api_tokens",
        {"expires_at": "REAL NOT NULL DEFAULT 0", "last_used": "REAL", "revoked_at": "REAL"},
        # Tokens from before expiry get the default lifetime from the upgrade on,
        # so no script stops on the day of the upgrade.
        "UPDATE api_tokens SET expires_at = ?",
        (now + DEFAULT_TOKEN_DAYS * DAY_S,),
    )


class ApiTokens:
    """The API tokens of the accounts in ``path`` (the part of ``UserStore`` that holds them).

    The store that has it sets ``path`` and ``_clock`` and creates the table
    (``create_token_table``) when it opens the file.
    """

    path: Path
    _clock: Callable[[], float]

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

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
                    (secret_digest(token), name, label, now, now + days * DAY_S),
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
