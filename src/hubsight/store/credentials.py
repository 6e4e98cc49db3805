"""What accounts, sessions, API tokens and setup links share: who a credential lets in, what is
stored of its secret, and how its times are shown.

Its own module so that ``users`` (accounts and sessions) and ``tokens`` (API tokens) both build
on it without importing each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class Account:
    """A console user: name and role."""

    name: str
    role: Role


def secret_digest(secret: str) -> str:
    """What is stored of a secret (session id, API token, setup link): its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def epoch_iso(epoch: float | None) -> str | None:
    """Epoch seconds as an ISO time in UTC to the second (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
