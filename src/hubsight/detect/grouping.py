"""Grouping alerts into investigations, inside the engine's transaction.

An alert joins the investigation (not closed) that shares one of its subjects (its user, its
source address, the Azure resource it names) and whose alerts lie within the grouping window of
it; else it opens a new one. Doing this in the transaction that saves the alert means an alert is
never seen without its investigation, and a replayed batch finds its alerts already grouped.
Notables are not grouped: they show in the timeline of the alerts that list them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Literal

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Severity

Priority = Literal["critical", "high", "medium", "low"]
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")
_PRIORITY_OF: dict[Severity, Priority] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.INFO: "low",
}
# The engine is the actor of what grouping writes into an investigation's history.
DETECTION = "detection"


def priority_rank(priority: str) -> int:
    """3 for critical down to 0 for low."""
    return len(PRIORITIES) - 1 - PRIORITIES.index(priority)


def priority_of(severity: Severity) -> Priority:
    """The priority an investigation opened by an alert of ``severity`` starts with."""
    return _PRIORITY_OF[severity]


def subjects(alert: Alert) -> list[str]:
    """What the alert concerns, as ``kind:value`` keys: its user, address and resources."""
    found: list[str] = []
    if alert.user:
        found.append(f"user:{alert.user.lower()}")
    if alert.source_ip:
        found.append(f"ip:{alert.source_ip}")
    named = [alert.context.get("target"), *(alert.context.get("targets") or [])]
    for value in named:
        # Only Azure resource ids: a target may also be a user or a display name.
        if isinstance(value, str) and value.lower().startswith("/subscriptions/"):
            found.append(f"resource:{value.lower()}")
    return list(dict.fromkeys(found))


def investigation_id(seed: str) -> str:
    """A stable id from the alert that opened it, so a replay names it the same way."""
    return "inv-" + hashlib.sha256(seed.encode()).hexdigest()[:12]


def group_alerts(
    conn: sqlite3.Connection, alerts: Iterable[Alert], window_s: float, now: float
) -> dict[str, str]:
    """File each alert (not notable) under an investigation; those that opened one (alert id ->
    investigation id)."""
    opened: dict[str, str] = {}
    for alert in alerts:
        if alert.notable:
            continue
        found = conn.execute(
            "SELECT investigation_id FROM investigation_alerts WHERE alert_id = ?", (alert.id,)
        ).fetchone()
        if found is not None:
            _widen(conn, found[0], alert, now)
            continue
        keys = subjects(alert)
        target = _matching(conn, keys, alert, window_s) if keys else None
        if target is None:
            target = investigation_id(alert.id)
            conn.execute(
                "INSERT INTO investigations (id, title, priority, first_event_time, "
                "last_event_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    target,
                    title_for(alert, keys),
                    priority_of(alert.severity),
                    alert.first_event_time.timestamp(),
                    alert.last_event_time.timestamp(),
                    now,
                    now,
                ),
            )
            opened[alert.id] = target
        add_alert(conn, target, alert, now, actor=DETECTION)
    return opened


def title_for(alert: Alert, keys: Sequence[str]) -> str:
    """An investigation's first title: its first alert and what it concerns."""
    about = keys[0].split(":", 1)[1] if keys else ""
    return f"{alert.title}: {about}" if about and about not in alert.title.lower() else alert.title


def _matching(
    conn: sqlite3.Connection, keys: Sequence[str], alert: Alert, window_s: float
) -> str | None:
    marks = ", ".join("?" for _ in keys)
    # ``marks`` holds only question marks; the subjects are bound.
    sql = (
        "SELECT i.id FROM investigations i JOIN investigation_subjects s "  # noqa: S608
        f"ON s.investigation_id = i.id WHERE s.subject IN ({marks}) AND i.status != 'closed' "
        "AND i.last_event_time >= ? AND i.first_event_time <= ? "
        "ORDER BY i.last_event_time DESC, i.id LIMIT 1"
    )
    row = conn.execute(
        sql,
        (
            *keys,
            alert.first_event_time.timestamp() - window_s,
            alert.last_event_time.timestamp() + window_s,
        ),
    ).fetchone()
    return None if row is None else str(row[0])


def add_alert(
    conn: sqlite3.Connection, target: str, alert: Alert, now: float, *, actor: str
) -> None:
    """Put ``alert`` into investigation ``target`` (moving it from any other), with history."""
    conn.execute(
        "INSERT INTO investigation_alerts (alert_id, investigation_id) VALUES (?, ?) "
        "ON CONFLICT(alert_id) DO UPDATE SET investigation_id = excluded.investigation_id",
        (alert.id, target),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO investigation_subjects (subject, investigation_id) VALUES (?, ?)",
        [(key, target) for key in subjects(alert)],
    )
    conn.execute(
        "INSERT INTO investigation_history VALUES (?, ?, ?, 'alert added', ?)",
        (target, now, actor, f"{alert.id} {alert.title}"),
    )
    _widen(conn, target, alert, now)


def _widen(conn: sqlite3.Connection, target: str, alert: Alert, now: float) -> None:
    """Stretch the investigation's times over ``alert``; raise its priority to the alert's."""
    row = conn.execute("SELECT priority FROM investigations WHERE id = ?", (target,)).fetchone()
    priority = priority_of(alert.severity)
    if row is not None and priority_rank(row[0]) >= priority_rank(priority):
        priority = row[0]
    conn.execute(
        "UPDATE investigations SET first_event_time = min(first_event_time, ?), "
        "last_event_time = max(last_event_time, ?), priority = ?, updated_at = ? WHERE id = ?",
        (
            alert.first_event_time.timestamp(),
            alert.last_event_time.timestamp(),
            priority,
            now,
            target,
        ),
    )


def release_alerts(conn: sqlite3.Connection, alert_ids: Iterable[str]) -> None:
    """Forget the memberships of these alerts if they were withdrawn (deleted).

    An investigation left without alerts goes too, unless someone triaged or commented on it.
    """
    for alert_id in alert_ids:
        row = conn.execute(
            "SELECT investigation_id FROM investigation_alerts WHERE alert_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM alerts WHERE id = ?)",
            (alert_id, alert_id),
        ).fetchone()
        if row is None:
            continue
        conn.execute("DELETE FROM investigation_alerts WHERE alert_id = ?", (alert_id,))
        emptied = conn.execute(
            "SELECT 1 FROM investigations WHERE id = ? AND status = 'open' AND assignee IS NULL "
            "AND disposition IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM investigation_alerts WHERE investigation_id = ?) "
            "AND NOT EXISTS (SELECT 1 FROM investigation_history "
            "WHERE investigation_id = ? AND actor != ?)",
            (row[0], row[0], row[0], DETECTION),
        ).fetchone()
        if emptied is not None:
            for table in ("investigations", "investigation_subjects", "investigation_history"):
                column = "id" if table == "investigations" else "investigation_id"
                # ``table`` and ``column`` are the fixed names above.
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (row[0],))  # noqa: S608
