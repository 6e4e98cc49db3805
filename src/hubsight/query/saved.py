"""Saved searches (name, query, scope) kept in the event store's ``saved_queries`` table."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.errors import NotFoundError
from hubsight.query.compiler import Scope, compile_query
from hubsight.query.params import bind
from hubsight.query.parser import parse
from hubsight.store.base import EventStore
from hubsight.store.schema import SAVED_QUERIES_TABLE


class SavedScope(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a saved query looks: log sets, log names and a relative time range."""

    log_sets: list[str] = msgspec.field(default_factory=list)
    log_names: list[str] = msgspec.field(default_factory=list)
    last: str | None = None


class SavedQuery(msgspec.Struct, kw_only=True):
    """A named LEQL query with its scope."""

    id: str
    name: str
    query: str
    scope: SavedScope
    created_at: str
    updated_at: str


_TYPES = {
    "id": "String",
    "name": "String",
    "query": "String",
    "scope": "String",
    "created_at": "DateTime64(3, 'UTC')",
    "updated_at": "DateTime64(3, 'UTC')",
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


def _from_row(row: dict[str, Any]) -> SavedQuery:
    return SavedQuery(
        id=row["id"],
        name=row["name"],
        query=row["query"],
        scope=msgspec.json.decode(row["scope"], type=SavedScope),
        created_at=_iso(row["created_at"]),
        updated_at=_iso(row["updated_at"]),
    )


def list_saved(store: EventStore) -> list[SavedQuery]:
    """Every saved query, by name."""
    rows = store.select(
        f"SELECT * FROM {SAVED_QUERIES_TABLE} FINAL WHERE NOT deleted ORDER BY name, id"  # noqa: S608
    )
    return [_from_row(r) for r in rows]


def get_saved(store: EventStore, query_id: str) -> SavedQuery:
    """One saved query; ``NotFoundError`` when there is none with this id."""
    rows = store.select(
        f"SELECT * FROM {SAVED_QUERIES_TABLE} FINAL WHERE id = {{id:String}} AND NOT deleted",  # noqa: S608
        bind({"id": ("String", query_id)}),
    )
    if not rows:
        raise NotFoundError(
            f"no saved query with id '{query_id}'", hint="list saved queries to see their ids"
        )
    return _from_row(rows[0])


def save(
    store: EventStore,
    *,
    name: str,
    query: str,
    scope: SavedScope,
    query_id: str | None = None,
) -> SavedQuery:
    """Create a saved query, or replace one when ``query_id`` is given; the query must compile."""
    created = _now()
    compile_query(parse(query), Scope(start=created - timedelta(hours=1), end=created), limit=1)
    if query_id is not None:
        created = datetime.fromisoformat(get_saved(store, query_id).created_at)
    saved_id = query_id or uuid.uuid4().hex
    row: dict[str, Any] = {
        "id": saved_id,
        "name": name,
        "query": query,
        "scope": msgspec.json.encode(scope).decode(),
        "created_at": created,
        "updated_at": _now(),
        "version": time.time_ns(),
        "deleted": False,
    }
    _insert(store, row)
    return get_saved(store, saved_id)


def delete_saved(store: EventStore, query_id: str) -> None:
    """Remove a saved query; ``NotFoundError`` when there is none with this id."""
    found = get_saved(store, query_id)
    row = msgspec.structs.asdict(found)
    row.update(
        scope=msgspec.json.encode(found.scope).decode(),
        created_at=datetime.fromisoformat(found.created_at),
        updated_at=_now(),
        version=time.time_ns(),
        deleted=True,
    )
    _insert(store, row)
