"""Case retention: closed alerts and investigations deleted some days after they last changed.

The policy (``Catalog.case_retention``: for ever unless set) is applied by ``hubsight run`` once
a minute (``Detection.expire_cases``), in transactions of at most ``CHUNK`` alerts, each taken
between two of the engine's batches: the engine, which writes to the same database, waits for
one chunk at most (milliseconds), never for the whole sweep.

At a cut-off of ``now - days``, what goes is:

- an investigation that is closed and last changed (its row, or a line of its history) at or
  before the cut-off, and whose alerts would all go on their own: with its alerts, subjects and
  history;
- an alert in no investigation that is closed and last changed (by detection or triage, or a
  line of its history) at or before the cut-off, with no notification waiting to be sent; a
  notable only once no alert left lists it (``notables.relink`` lists it on the alerts about its
  user that end after it and begin less than a week after it).

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
# Alerts deleted per transaction: a few milliseconds of the engine's write lock.
CHUNK = 500

# Whether alert ``a`` must stay on its own account (the cut-off bound as ``:cut``).
_ALERT_STAYS = (
    "(a.status != 'closed' OR a.updated_at > :cut "
    "OR EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.id AND h.at > :cut) "
    "OR EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id))"
)
_IDS = "IN (SELECT value FROM json_each(?))"
# Only the constants above are interpolated into these.
_INVESTIGATIONS = (
    "SELECT i.id, (SELECT count(*) FROM investigation_alerts m "  # noqa: S608 - constants
    "WHERE m.investigation_id = i.id) AS alerts FROM investigations i "
    "WHERE i.status = 'closed' AND i.updated_at <= :cut "
    "AND NOT EXISTS (SELECT 1 FROM investigation_history h "
    "WHERE h.investigation_id = i.id AND h.at > :cut) "
    "AND NOT EXISTS (SELECT 1 FROM investigation_alerts m JOIN alerts a ON a.id = m.alert_id "
    f"WHERE m.investigation_id = i.id AND {_ALERT_STAYS}) "
    "ORDER BY i.updated_at LIMIT :limit"
)
_LOOSE = (
    "SELECT a.id, a.dedup_key, a.user, a.notable FROM alerts a "
    "WHERE a.status = 'closed' AND a.updated_at <= :cut AND a.notable = :notable "
    "AND NOT EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.id AND h.at > :cut) "
    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id) "
    "AND NOT EXISTS (SELECT 1 FROM investigation_alerts m JOIN investigations i "
    "ON i.id = m.investigation_id WHERE m.alert_id = a.id) {} "
    "ORDER BY a.updated_at LIMIT :limit"
)
_UNLISTED = (
    "AND NOT EXISTS (SELECT 1 FROM alerts b WHERE b.user = a.user AND b.notable = 0 "
    "AND b.last_event_time >= a.last_event_time "
    "AND b.first_event_time <= a.last_event_time + :lookback)"
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
    """What a sweep deleted; ``done`` when nothing more is due."""

    alerts: int = 0
    investigations: int = 0
    done: bool = True


def cutoff(days: int, now: float) -> float:
    """The time a case must have last changed at or before to go."""
    return now - days * DAY_S


def expire_chunk(db: DetectDB, days: int, now: float, limit: int = CHUNK) -> tuple[list[Gone], int]:
    """Delete, in one transaction, up to about ``limit`` alerts that are due (whole
    investigations first, one at least); the alerts deleted and how many investigations."""
    params: dict[str, Any] = {"cut": cutoff(days, now), "lookback": LOOKBACK.total_seconds()}
    with db.transaction() as conn:
        chosen: list[str] = []
        count = 0
        for row in conn.execute(_INVESTIGATIONS, params | {"limit": limit}):
            if chosen and count + row[1] > limit:
                break
            chosen.append(row[0])
            count += row[1]
        gone = _rows(conn.execute(_MEMBERS, (json.dumps(chosen),)))
        _delete(conn, _OF_ALERT, [g.id for g in gone])
        _delete(conn, _OF_INVESTIGATION, chosen)
        # Alerts before notables: a notable goes once the alerts that list it are gone.
        for notable, extra in ((0, ""), (1, _UNLISTED)):
            room = limit - len(gone)
            if room <= 0:
                break
            query = _LOOSE.format(extra)
            loose = _rows(conn.execute(query, params | {"notable": notable, "limit": room}))
            _delete(conn, _OF_ALERT, [g.id for g in loose])
            gone += loose
    return gone, len(chosen)


def sweep(
    db: DetectDB,
    days: int,
    now: float,
    *,
    between: Callable[[Callable[[], tuple[list[Gone], int]]], tuple[list[Gone], int]] = (
        lambda step: step()
    ),
    budget_s: float = 2.0,
    limit: int = CHUNK,
) -> Expired:
    """Delete what is due, chunk by chunk, for about ``budget_s`` seconds at most (the rest
    goes in the next sweep); each chunk run by ``between`` (the engine's, between batches)."""
    expired = Expired()
    deadline = time.monotonic() + budget_s
    while True:
        gone, investigations = between(lambda: expire_chunk(db, days, now, limit))
        expired.alerts += len(gone)
        expired.investigations += investigations
        if len(gone) < limit and not investigations:
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
    "alerts_closed",
    "alert_history_alert",
    "sqlite_autoindex_investigations_1",
    "investigations_time",
    "investigations_closed",
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


def _rows(cursor: sqlite3.Cursor) -> list[Gone]:
    return [Gone(str(r[0]), str(r[1]), r[2], bool(r[3])) for r in cursor]


def _delete(conn: sqlite3.Connection, tables: Sequence[tuple[str, str]], ids: list[str]) -> None:
    if not ids:
        return
    encoded = json.dumps(ids)
    for table, column in tables:
        # ``table`` and ``column`` are the fixed names above; the ids are bound.
        conn.execute(f"DELETE FROM {table} WHERE {column} {_IDS}", (encoded,))  # noqa: S608
