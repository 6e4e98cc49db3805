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
    grouped = [alert for alert in alerts if not alert.notable]
    filed = _filed(conn, [alert.id for alert in grouped])
    # Most alerts of a batch are updates of alerts already filed, which only widen their
    # investigation. Widening commutes (earliest, latest, highest), so it is gathered and
    # written once per investigation: before an alert is matched by time, and at the end.
    widen: dict[str, _Span] = {}
    # New alerts' memberships and history lines, written together at the end: matching reads
    # neither (only investigations and their subjects), and a batch files a score of new alerts.
    members: list[tuple[str, str]] = []
    history: list[tuple[str, float, str, str]] = []
    for alert in grouped:
        found = filed.get(alert.id)
        if found is not None:
            _gather(widen, found, alert)
            continue
        # Also the spans of the new alerts filed before it (as ``add_alert`` widens).
        _widen(conn, widen, now)
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
        # Its subjects at once: the next new alert is matched by them.
        conn.executemany(_SUBJECT, [(key, target) for key in keys])
        members.append((alert.id, target))
        history.append((target, now, DETECTION, f"{alert.id} {alert.title}"))
        _gather(widen, target, alert)
    _widen(conn, widen, now)
    conn.executemany(_MEMBER, members)
    conn.executemany(_HISTORY, history)
    return opened


def _filed(conn: sqlite3.Connection, alert_ids: Sequence[str]) -> dict[str, str]:
    """The investigations (alert id -> investigation id) these alerts are in."""
    found: dict[str, str] = {}
    # SQLite binds at most 32,766 parameters per statement.
    for start in range(0, len(alert_ids), 1000):
        chunk = alert_ids[start : start + 1000]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            # ``marks`` holds only question marks; the ids are bound.
            "SELECT alert_id, investigation_id FROM investigation_alerts "  # noqa: S608
            f"WHERE alert_id IN ({marks})",
            chunk,
        )
        # Both columns are text: the (alert, investigation) rows are the pairs themselves.
        found.update(rows)
    return found


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


_MEMBER = (
    "INSERT INTO investigation_alerts (alert_id, investigation_id) VALUES (?, ?) "
    "ON CONFLICT(alert_id) DO UPDATE SET investigation_id = excluded.investigation_id"
)
_SUBJECT = "INSERT OR IGNORE INTO investigation_subjects (subject, investigation_id) VALUES (?, ?)"
_HISTORY = "INSERT INTO investigation_history VALUES (?, ?, ?, 'alert added', ?)"


def add_alert(
    conn: sqlite3.Connection, target: str, alert: Alert, now: float, *, actor: str
) -> None:
    """Put ``alert`` into investigation ``target`` (moving it from any other), with history."""
    conn.execute(_MEMBER, (alert.id, target))
    conn.executemany(_SUBJECT, [(key, target) for key in subjects(alert)])
    conn.execute(_HISTORY, (target, now, actor, f"{alert.id} {alert.title}"))
    spans: dict[str, _Span] = {}
    _gather(spans, target, alert)
    _widen(conn, spans, now)


# How far an investigation must stretch: first and last event time, highest priority rank.
_Span = tuple[float, float, int]


# The priority rank an alert of each severity asks of its investigation.
_RANK_OF = {severity: priority_rank(priority) for severity, priority in _PRIORITY_OF.items()}


def _gather(widen: dict[str, _Span], target: str, alert: Alert) -> None:
    span = (
        alert.first_event_time.timestamp(),
        alert.last_event_time.timestamp(),
        _RANK_OF[alert.severity],
    )
    held = widen.get(target)
    if held is not None:
        span = (min(held[0], span[0]), max(held[1], span[1]), max(held[2], span[2]))
    widen[target] = span


_RANK_SQL = " ".join(
    ["CASE priority", *(f"WHEN '{p}' THEN {priority_rank(p)}" for p in PRIORITIES), "END"]
)

# ``_RANK_SQL`` is built from the fixed priority names.
_WIDEN = (
    "UPDATE investigations SET first_event_time = min(first_event_time, ?), "  # noqa: S608
    "last_event_time = max(last_event_time, ?), "
    f"priority = CASE WHEN {_RANK_SQL} >= ? THEN priority ELSE ? END, "
    "updated_at = ? WHERE id = ?"
)


def _widen(conn: sqlite3.Connection, widen: dict[str, _Span], now: float) -> None:
    """Stretch each investigation's times over its span; raise its priority to the span's;
    then forget the spans."""
    if not widen:
        return
    conn.executemany(
        _WIDEN,
        [
            (first, last, rank, PRIORITIES[len(PRIORITIES) - 1 - rank], now, target)
            for target, (first, last, rank) in widen.items()
        ],
    )
    widen.clear()


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
