"""Saved searches (name, query, scope) kept in the event store's ``saved_queries`` table.

Each has an owner, the account that saved it. The owner and admins change and delete it;
others see it only when the owner shared it (read-only: they run it, never change it). One that
another analyst cannot see is "not found" to them, so its name and existence do not leak.
Queries saved before owners existed have none (``owner == ""``): everyone sees them, admins
alone change them.

A query whose owner's account was deleted stays, as no one's (``owner_deleted``): admins see,
run, reassign (``owner``) or delete it; others run it only if it was shared; no one edits it
before it has an owner again. A new account that takes the deleted one's name does not inherit
it: a query last written before its owner's name was deleted is no one's (``Owners``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.errors import ConfigError, ForbiddenError, NotFoundError
from hubsight.query.compiler import Scope, compile_query
from hubsight.query.params import bind
from hubsight.query.parser import parse
from hubsight.store.base import EventStore
from hubsight.store.schema import SAVED_QUERIES_TABLE
from hubsight.store.users import Account


class SavedScope(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a saved query looks: log sets, log names and a relative time range."""

    log_sets: list[str] = msgspec.field(default_factory=list)
    log_names: list[str] = msgspec.field(default_factory=list)
    last: str | None = None


class SavedQuery(msgspec.Struct, kw_only=True):
    """A named LEQL query with its scope, its owner ('' when unknown) and whether it is shared."""

    id: str
    name: str
    query: str
    scope: SavedScope
    created_at: str
    updated_at: str
    owner: str
    shared: bool
    # When it was last written (nanoseconds since the epoch), the row version.
    version: int
    # Its owner's account was deleted (see ``Owners``): no one's until an admin reassigns it.
    owner_deleted: bool = False

    def visible_to(self, account: Account) -> bool:
        """Whether ``account`` may see and run it."""
        return self.shared or may_change(self, account)


@dataclass(frozen=True, slots=True)
class Owners:
    """The accounts there are now, and when (epoch seconds) each deleted name was deleted."""

    accounts: frozenset[str]
    deleted_at: Mapping[str, float]

    def gone(self, owner: str, version: int) -> bool:
        """Whether the account that owned a query last written at ``version`` was deleted (its
        name may have been taken again since: the new account is not the owner)."""
        deleted = self.deleted_at.get(owner)
        return owner != "" and (
            owner not in self.accounts or (deleted is not None and deleted * 1e9 >= version)
        )


def may_change(saved: SavedQuery, account: Account) -> bool:
    """Whether ``account`` may change or delete ``saved``: its owner or an admin."""
    if account.role == "admin":
        return True
    return not saved.owner_deleted and saved.owner != "" and saved.owner == account.name


_TYPES = {
    "id": "String",
    "name": "String",
    "query": "String",
    "scope": "String",
    "created_at": "DateTime64(3, 'UTC')",
    "updated_at": "DateTime64(3, 'UTC')",
    "owner": "String",
    "shared": "Bool",
    "version": "UInt64",
    "deleted": "Bool",
}


def _insert(store: EventStore, row: dict[str, Any]) -> None:
    placeholders = ", ".join(f"{{{name}:{sql_type}}}" for name, sql_type in _TYPES.items())
    store.execute(
        f"INSERT INTO {SAVED_QUERIES_TABLE} ({', '.join(_TYPES)}) SELECT {placeholders}",
        bind({name: (_TYPES[name], row[name]) for name in _TYPES}),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: str) -> str:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _from_row(row: dict[str, Any], owners: Owners | None) -> SavedQuery:
    version = int(row["version"])
    return SavedQuery(
        id=row["id"],
        name=row["name"],
        query=row["query"],
        scope=msgspec.json.decode(row["scope"], type=SavedScope),
        created_at=_iso(row["created_at"]),
        updated_at=_iso(row["updated_at"]),
        owner=row["owner"],
        shared=bool(row["shared"]),
        version=version,
        owner_deleted=owners is not None and owners.gone(row["owner"], version),
    )


def list_saved(
    store: EventStore, account: Account, owners: Owners | None = None
) -> list[SavedQuery]:
    """Every saved query ``account`` may see, by name (``owners`` None: every owner is there)."""
    rows = store.select(
        f"SELECT * FROM {SAVED_QUERIES_TABLE} FINAL WHERE NOT deleted ORDER BY name, id"  # noqa: S608
    )
    found = (_from_row(row, owners) for row in rows)
    return [saved for saved in found if saved.visible_to(account)]


def get_saved(
    store: EventStore, query_id: str, account: Account, owners: Owners | None = None
) -> SavedQuery:
    """One saved query; ``NotFoundError`` when there is none with this id that ``account`` sees."""
    rows = store.select(
        f"SELECT * FROM {SAVED_QUERIES_TABLE} FINAL WHERE id = {{id:String}} AND NOT deleted",  # noqa: S608
        bind({"id": ("String", query_id)}),
    )
    found = _from_row(rows[0], owners) if rows else None
    if found is None or not found.visible_to(account):
        raise NotFoundError(
            f"no saved query with id '{query_id}'", hint="list saved queries to see their ids"
        )
    return found


def _changeable(
    store: EventStore, query_id: str, account: Account, owners: Owners | None
) -> SavedQuery:
    found = get_saved(store, query_id, account, owners)
    if not may_change(found, account):
        whose = f"'{found.owner}'" if found.owner else "an admin (it was saved before owners)"
        raise ForbiddenError(
            f"the saved query '{found.name}' belongs to {whose}: you may run it, not change it",
            hint="save a copy under another name, or ask its owner or an admin",
        )
    return found


def save(
    store: EventStore,
    account: Account,
    *,
    name: str,
    query: str,
    scope: SavedScope,
    shared: bool | None = None,
    query_id: str | None = None,
    owner: str | None = None,
    owners: Owners | None = None,
) -> SavedQuery:
    """Create a saved query owned by ``account``, or replace one when ``query_id`` is given.

    The query must compile. Replacing takes the owner or an admin and keeps the owner;
    ``shared=None`` keeps the sharing as it is (not shared for a new query). An admin gives it
    another ``owner`` (an account in ``owners``); one whose owner was deleted must get one.
    """
    created = _now()
    compile_query(parse(query), Scope(start=created - timedelta(hours=1), end=created), limit=1)
    kept_owner, was_shared = account.name, False
    if query_id is not None:
        old = _changeable(store, query_id, account, owners)
        created, kept_owner, was_shared = (
            datetime.fromisoformat(old.created_at),
            old.owner,
            old.shared,
        )
        if old.owner_deleted and owner is None:
            raise ConfigError(
                f"the saved query '{old.name}' belongs to '{old.owner}', whose account was "
                "deleted: it cannot be changed before it has an owner again",
                hint='give it an owner ("owner": an account name) in the same change, or delete it',
            )
    if owner is not None:
        if owner != kept_owner and account.role != "admin":
            raise ForbiddenError(
                "only an admin gives a saved query another owner",
                hint="save a copy under another name, or ask an admin",
            )
        if owners is not None and owner not in owners.accounts:
            raise ConfigError(
                f"no account named '{owner}' to own the saved query",
                hint="give the name of an existing account (Settings lists them)",
            )
        kept_owner = owner
    saved_id = query_id or uuid.uuid4().hex
    row: dict[str, Any] = {
        "id": saved_id,
        "name": name,
        "query": query,
        "scope": msgspec.json.encode(scope).decode(),
        "created_at": created,
        "updated_at": _now(),
        "owner": kept_owner,
        "shared": was_shared if shared is None else shared,
        "version": time.time_ns(),
        "deleted": False,
    }
    _insert(store, row)
    return get_saved(store, saved_id, account, owners)


def delete_saved(
    store: EventStore, query_id: str, account: Account, owners: Owners | None = None
) -> SavedQuery:
    """Remove a saved query (its owner or an admin); the query removed, for the record."""
    found = _changeable(store, query_id, account, owners)
    row = msgspec.structs.asdict(found)
    row.update(
        scope=msgspec.json.encode(found.scope).decode(),
        created_at=datetime.fromisoformat(found.created_at),
        updated_at=_now(),
        version=time.time_ns(),
        deleted=True,
    )
    _insert(store, row)
    return found
