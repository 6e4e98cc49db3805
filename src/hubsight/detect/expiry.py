"""Case retention: closed alerts and investigations deleted some days after they last changed.

The policy (``Catalog.case_retention``: for ever unless set) is applied by ``hubsight run`` once
a minute (``Detection.expire_cases``), in transactions of about ``CHUNK`` alerts at most, each
taken between two of the engine's batches: the engine, which writes to the same database, waits
for one chunk at most (tens of milliseconds), never for the whole sweep.

At a cut-off of ``now - days``, what goes is:

- an investigation that is closed and last changed (its row, or a line of its history) at or
  before the cut-off, and whose alerts would all go on their own: with its alerts, subjects and
  history;
- an alert in no investigation that is closed and last changed (by detection or triage, or a
  line of its history) at or before the cut-off, with no notification waiting to be sent; a
  notable only once no alert left lists it (``notables.relink`` lists it on the alerts about its
  user that end after it and begin less than a week after it).

Each chunk looks at the next ``CHUNK`` closed investigations and alerts past the cut-off, in
order of last change, from where the last chunk stopped (``Walk``), and deletes those of them
that may go: however many must stay (closed alerts of an investigation still open, say), a
chunk reads a bounded number of rows; a sweep walks on until it reaches the end or its time.

So open and in-progress alerts and investigations stay, and an alert stays as long as the
investigation it is in: a case is kept whole. Deleting an alert deletes everything that names
it (evidence parts, history, membership, notification records, dead letters); the audit trail
is another database and is never touched.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hubsight.detect.db import DetectDB
from hubsight.detect.notables import LOOKBACK
from hubsight.errors import StoreError

DAY_S = 86_400.0
# Cases looked at (and alerts deleted, about) per transaction: tens of milliseconds of the
# engine's write lock at most.
CHUNK = 200

# Whether alert ``a`` must stay on its own account (the cut-off bound as ``:cut``).
_ALERT_STAYS = (
    "(a.status != 'closed' OR a.updated_at > :cut "
    "OR EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.id AND h.at > :cut) "
    "OR EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id))"
)
_IDS = "IN (SELECT value FROM json_each(?))"
# Only the constants above are interpolated into these. Each walks the closed ones past the
# cut-off from ``(:at, :id)`` on, in the order of their partial index, saying which may go.
_INVESTIGATIONS = (
    "SELECT i.updated_at, i.id, (SELECT count(*) FROM investigation_alerts m "  # noqa: S608
    "WHERE m.investigation_id = i.id) AS alerts, "
    "NOT EXISTS (SELECT 1 FROM investigation_history h "
    "WHERE h.investigation_id = i.id AND h.at > :cut) "
    "AND NOT EXISTS (SELECT 1 FROM investigation_alerts m JOIN alerts a ON a.id = m.alert_id "
    f"WHERE m.investigation_id = i.id AND {_ALERT_STAYS}) AS due "
    "FROM investigations i WHERE i.status = 'closed' AND i.updated_at <= :cut "
    "AND (i.updated_at, i.id) > (:at, :id) ORDER BY i.updated_at, i.id LIMIT :limit"
)
# Read from the index alone (its columns and other indexes): most closed alerts past the
# cut-off are in an investigation, and go with it.
_ALERTS = (
    "SELECT a.updated_at, a.id, NOT EXISTS (SELECT 1 FROM investigation_alerts m "
    "JOIN investigations i ON i.id = m.investigation_id WHERE m.alert_id = a.id) "
    "AND NOT EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.id AND h.at > :cut) "
    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id) AS due "
    "FROM alerts a WHERE a.status = 'closed' AND a.updated_at <= :cut "
    "AND (a.updated_at, a.id) > (:at, :id) ORDER BY a.updated_at, a.id LIMIT :limit"
)
# Of those, the ones to delete: a notable only once no alert lists it.
_LOOSE = (
    "SELECT a.id, a.dedup_key, a.user, a.notable FROM alerts a "
    "WHERE a.id IN (SELECT value FROM json_each(:ids)) "
    "AND (a.notable = 0 OR NOT EXISTS (SELECT 1 FROM alerts b WHERE b.user = a.user "
    "AND b.notable = 0 AND b.last_event_time >= a.last_event_time "
    "AND b.first_event_time <= a.last_event_time + :lookback))"
)
_MEMBERS = (
    "SELECT a.id, a.dedup_key, a.user, a.notable FROM investigation_alerts m "  # noqa: S608
    f"JOIN alerts a ON a.id = m.alert_id WHERE m.investigation_id {_IDS}"
)
# Every table naming an alert (``alert_refs`` goes with its alert, by trigger), and every table
# naming an investigation, with the column that does.
_OF_ALERT = (
    ("alert_history", "alert_id"),
    ("investigation_alerts", "alert_id"),
    ("investigation_closed_alerts", "alert_id"),
    ("notified", "alert_id"),
    ("dead_letters", "alert_id"),
    ("outbox", "alert_id"),
    ("alerts", "id"),
)
_OF_INVESTIGATION = (
    ("investigation_alerts", "investigation_id"),
    ("investigation_closed_alerts", "investigation_id"),
    ("investigation_subjects", "investigation_id"),
    ("investigation_history", "investigation_id"),
    ("investigations", "id"),
)


@dataclass(frozen=True, slots=True)
class Gone:
    """An alert deleted, as the engine knows it (to forget what it holds of it)."""

    id: str
    dedup_key: str
    user: str | None
    notable: bool


@dataclass(slots=True)
class Expired:
    """What a sweep deleted; ``done`` when it looked at everything past the cut-off."""

    alerts: int = 0
    investigations: int = 0
    done: bool = True


# Where a walk starts: before every (updated_at, id).
_START = (float("-inf"), "")


@dataclass(slots=True)
class Walk:
    """Where the chunks have got to among closed investigations and alerts (last change, id);
    back to the start once a walk reaches the end. Held by the engine from sweep to sweep."""

    investigations: tuple[float, str] = _START
    alerts: tuple[float, str] = _START


@dataclass(slots=True)
class Chunk:
    """What one transaction deleted, and whether a walk stopped before the end."""

    gone: list[Gone]
    investigations: int
    more: bool


def cutoff(days: int, now: float) -> float:
    """The time a case must have last changed at or before to go."""
    return now - days * DAY_S


def expire_chunk(
    db: DetectDB, days: int, now: float, limit: int = CHUNK, walk: Walk | None = None
) -> Chunk:
    """In one transaction, look at the next ``limit`` closed investigations and alerts past
    the cut-off (from ``walk``, moved on; from the start without one) and delete those that
    may go: investigations whole, up to about ``limit`` alerts (one at least)."""
    walk = walk if walk is not None else Walk()
    params: dict[str, Any] = {"cut": cutoff(days, now), "limit": limit}
    with db.transaction() as conn:
        looked = conn.execute(_INVESTIGATIONS, params | _at(walk.investigations)).fetchall()
        chosen: list[str] = []
        count = 0
        stopped = False
        for at, investigation, alerts, due in looked:
            if due:
                if chosen and count + alerts > limit:
                    stopped = True
                    break
                chosen.append(investigation)
                count += alerts
            walk.investigations = (at, investigation)
        more = stopped or len(looked) == limit
        if not more:
            walk.investigations = _START
        gone = _rows(conn.execute(_MEMBERS, (json.dumps(chosen),)))
        _delete(conn, _OF_ALERT, [g.id for g in gone])
        _delete(conn, _OF_INVESTIGATION, chosen)
        # After the investigations: their alerts are gone, and no longer list notables.
        looked = conn.execute(_ALERTS, params | _at(walk.alerts)).fetchall()
        free = [alert for _, alert, due in looked if due]
        lookback = LOOKBACK.total_seconds()
        loose = _rows(conn.execute(_LOOSE, {"ids": json.dumps(free), "lookback": lookback}))
        _delete(conn, _OF_ALERT, [g.id for g in loose])
        walk.alerts = (looked[-1][0], looked[-1][1]) if len(looked) == limit else _START
    return Chunk(gone + loose, len(chosen), more or len(looked) == limit)


def sweep(
    db: DetectDB,
    days: int,
    now: float,
    *,
    walk: Walk | None = None,
    between: Callable[[Callable[[], Chunk]], Chunk] = lambda step: step(),
    budget_s: float = 2.0,
    limit: int = CHUNK,
) -> Expired:
    """Delete what is due, chunk by chunk, until the walks reach the end or for about
    ``budget_s`` seconds (the next sweep goes on from there); each chunk run by ``between``
    (the engine's: between batches)."""
    walk = walk if walk is not None else Walk()
    expired = Expired()
    deadline = time.monotonic() + budget_s
    while True:
        chunk = between(lambda: expire_chunk(db, days, now, limit, walk))
        expired.alerts += len(chunk.gone)
        expired.investigations += chunk.investigations
        if not chunk.more:
            return expired
        if time.monotonic() >= deadline:
            expired.done = False
            return expired
        # Let the engine's next batch in before the next chunk.
        time.sleep(0.005)


def usage(db: DetectDB, days: int | None) -> dict[str, Any]:
    """The policy with the alerts and investigations stored and the disk they take.

    The disk is the detection database's pages in use (two pragmas, where counting the case
    tables' own pages reads every one of them): alerts and investigations are most of it, the
    rest detection's windows and baselines (``bench/cases.py`` prints both).
    """
    (row,) = db.rows(
        "SELECT (SELECT count(*) FROM alerts) AS alerts, "
        "(SELECT count(*) FROM investigations) AS investigations, "
        "(SELECT page_count FROM pragma_page_count()) AS pages, "
        "(SELECT freelist_count FROM pragma_freelist_count()) AS free, "
        "(SELECT page_size FROM pragma_page_size()) AS page_size"
    )
    return {
        "name": "alerts",
        "days": days,
        "alerts": int(row["alerts"]),
        "investigations": int(row["investigations"]),
        "bytes_on_disk": (int(row["pages"]) - int(row["free"])) * int(row["page_size"]),
    }


_CASE_TABLES = (
    "alerts",
    "alert_refs",
    "alert_history",
    "investigations",
    "investigation_alerts",
    "investigation_subjects",
    "investigation_history",
    "sqlite_autoindex_alerts_1",
    "sqlite_autoindex_alerts_2",
    "alerts_user",
    "alerts_time",
    "alerts_closed_at",
    "alert_history_alert",
    "sqlite_autoindex_investigations_1",
    "investigations_time",
    "investigations_closed_at",
    "sqlite_autoindex_investigation_alerts_1",
    "investigation_alerts_of",
    "sqlite_autoindex_investigation_subjects_1",
    "investigation_history_of",
    "investigation_closed_alerts",
    "investigation_closed_alerts_alert",
)


def case_bytes(db: DetectDB) -> int:
    """The bytes of the pages the case tables and their indexes take (reads every one of them:
    for measuring, not for a page); 0 when SQLite was built without ``dbstat``."""
    marks = ", ".join("?" * len(_CASE_TABLES))
    try:
        # ``marks`` holds only question marks; the names are bound.
        (row,) = db.rows(
            f"SELECT sum(pgsize) AS bytes FROM dbstat WHERE name IN ({marks})",  # noqa: S608
            _CASE_TABLES,
        )
    except StoreError:
        return 0
    return int(row["bytes"] or 0)


def _at(position: tuple[float, str]) -> dict[str, Any]:
    return {"at": position[0], "id": position[1]}


def _rows(cursor: sqlite3.Cursor) -> list[Gone]:
    return [Gone(str(r[0]), str(r[1]), r[2], bool(r[3])) for r in cursor]


def _delete(conn: sqlite3.Connection, tables: Sequence[tuple[str, str]], ids: list[str]) -> None:
    if not ids:
        return
    encoded = json.dumps(ids)
    for table, column in tables:
        # ``table`` and ``column`` are the fixed names above; the ids are bound.
        conn.execute(f"DELETE FROM {table} WHERE {column} {_IDS}", (encoded,))  # noqa: S608
