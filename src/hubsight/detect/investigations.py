"""Investigations: the alerts about one user, address or resource, triaged together.

The engine files alerts under investigations as it saves them (``grouping``); people triage
them here: status, disposition, assignee, priority, title and comments, each change recorded in
``investigation_history``. Closing an investigation closes its open alerts with the same
disposition; reopening it gives those alerts their status and disposition back, unless someone
has triaged one since (alerts closed by hand before stay closed). Analysts can also merge
investigations, split alerts off into a new one, and move an alert by hand.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hubsight.detect.alerts import (
    DISPOSITIONS,
    STATUSES,
    Alert,
    AlertStore,
    Disposition,
    Status,
    history_docs,
    like_escape,
    triage_in,
)
from hubsight.detect.base import EventRef
from hubsight.detect.baseline import from_epoch
from hubsight.detect.db import DetectDB
from hubsight.detect.grouping import PRIORITIES, Priority, add_alert, priority_rank
from hubsight.errors import ConfigError, NotFoundError

_NOT_FOUND_HINT = "list investigations with `hubsight investigations list`"


@dataclass(frozen=True, slots=True, kw_only=True)
class Investigation:
    """One investigation as read from the database."""

    id: str
    title: str
    status: Status
    disposition: Disposition | None
    assignee: str | None
    priority: Priority
    first_event_time: datetime
    last_event_time: datetime
    created_at: datetime
    updated_at: datetime
    alert_count: int
    subjects: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The investigation as the API and the CLI show it in lists."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "disposition": self.disposition,
            "assignee": self.assignee,
            "priority": self.priority,
            "first_event_time": self.first_event_time.isoformat(),
            "last_event_time": self.last_event_time.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "alert_count": self.alert_count,
            "subjects": list(self.subjects),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestigationFilter:
    """Filters of the investigation list; ``text`` matches part of a title or subject."""

    status: Status | None = None
    assignee: str | None = None
    priority: Priority | None = None
    text: str | None = None
    since: datetime | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One step of an investigation's timeline: an alert, a notable or an evidence event."""

    at: datetime
    kind: str
    alert: Alert
    ref: EventRef | None = None
    # The alerts that cite this evidence event (one event may back several).
    cited_by: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Triage:
    """Changes to an investigation; None leaves a field as it is."""

    status: Status | None = None
    disposition: Disposition | None = None
    assignee: str | None = None
    priority: Priority | None = None
    title: str | None = None
    comment: str | None = None


_SELECT = (
    "SELECT i.*, (SELECT count(*) FROM investigation_alerts a WHERE a.investigation_id = i.id) "
    "AS alert_count, (SELECT group_concat(subject, char(10)) FROM investigation_subjects s "
    "WHERE s.investigation_id = i.id) AS subject_list FROM investigations i"
)


class InvestigationStore:
    """Reads and triages investigations in the detection database."""

    def __init__(self, db: DetectDB) -> None:
        self.db = db
        self.alerts = AlertStore(db)

    def get(self, investigation_id: str) -> Investigation:
        """The investigation with this id; NotFoundError when there is none."""
        rows = self.db.rows(f"{_SELECT} WHERE i.id = ?", (investigation_id,))
        if not rows:
            raise NotFoundError(
                f"no investigation with id {investigation_id!r}", hint=_NOT_FOUND_HINT
            )
        return _row(rows[0])

    def of_alert(self, alert_id: str) -> Investigation | None:
        """The investigation an alert is in, or None."""
        rows = self.db.rows(
            "SELECT investigation_id FROM investigation_alerts WHERE alert_id = ?", (alert_id,)
        )
        return self.get(rows[0]["investigation_id"]) if rows else None

    def find(self, flt: InvestigationFilter = InvestigationFilter()) -> list[Investigation]:
        """Investigations matching ``flt``, most recent event first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (
            ("status", flt.status),
            ("assignee", flt.assignee),
            ("priority", flt.priority),
        ):
            if value is not None:
                where.append(f"i.{column} = ?")
                params.append(value)
        if flt.text:
            where.append(
                "(i.title LIKE ? ESCAPE '\\' OR i.id LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 "
                "FROM investigation_subjects s WHERE s.investigation_id = i.id "
                "AND s.subject LIKE ? ESCAPE '\\'))"
            )
            pattern = "%" + like_escape(flt.text.strip().lower()) + "%"
            params += [pattern, pattern, pattern]
        if flt.since is not None:
            where.append("i.last_event_time >= ?")
            params.append(flt.since.timestamp())
        params.append(flt.limit)
        sql = (
            # Only the fixed column names above are interpolated; values are bound.
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY i.last_event_time DESC, i.id LIMIT ?"
        )
        return [_row(row) for row in self.db.rows(sql, params)]

    def member_alerts(self, investigation_id: str) -> list[Alert]:
        """The investigation's alerts, earliest first."""
        rows = self.db.rows(
            "SELECT alert_id FROM investigation_alerts WHERE investigation_id = ?",
            (investigation_id,),
        )
        found = [self.alerts.get(row["alert_id"]) for row in rows]
        return sorted(found, key=lambda a: (a.first_event_time, a.id))

    def timeline(self, investigation_id: str) -> list[TimelineEntry]:
        """Every alert, notable and evidence event of the investigation, in event-time order."""
        entries: list[TimelineEntry] = []
        evidence: dict[EventRef, TimelineEntry] = {}
        notables: dict[str, Alert] = {}
        for alert in self.member_alerts(investigation_id):
            entries.append(TimelineEntry(at=alert.first_event_time, kind="alert", alert=alert))
            for ref in alert.evidence:
                if ref not in evidence:
                    evidence[ref] = TimelineEntry(
                        at=ref.timestamp, kind="evidence", alert=alert, ref=ref
                    )
                evidence[ref].cited_by.append(alert.id)
            for notable_id in alert.context.get("notables", []):
                if notable_id not in notables:
                    try:
                        notables[notable_id] = self.alerts.get(notable_id)
                    except NotFoundError:
                        continue  # withdrawn since the alert listed it
        entries += [
            TimelineEntry(at=n.first_event_time, kind="notable", alert=n) for n in notables.values()
        ]
        entries += evidence.values()
        order = {"notable": 0, "alert": 1, "evidence": 2}
        return sorted(entries, key=lambda e: (e.at, order[e.kind], e.alert.id))

    def history(self, investigation_id: str) -> list[dict[str, Any]]:
        """Changes, comments, alerts added, merges and splits, oldest first."""
        rows = self.db.rows(
            "SELECT at, actor, action, detail FROM investigation_history "
            "WHERE investigation_id = ? ORDER BY at, rowid",
            (investigation_id,),
        )
        return history_docs(rows)

    def update(self, investigation_id: str, triage: Triage, *, actor: str) -> Investigation:
        """Apply ``triage``; closing also closes the open alerts with the same disposition."""
        current = self.get(investigation_id)
        _check(triage)
        if triage.title is not None and not triage.title.strip():
            raise ConfigError("an investigation's title cannot be empty", hint="give it a title")
        changes = [
            (name, old, new)
            for name, old, new in (
                ("status", current.status, triage.status),
                ("disposition", current.disposition, triage.disposition),
                ("assignee", current.assignee, triage.assignee),
                ("priority", current.priority, triage.priority),
                ("title", current.title, triage.title and triage.title.strip()),
            )
            # An empty assignee unassigns.
            if new is not None and (new or None) != old
        ]
        now = time.time()
        closing = triage.status == "closed" and current.status != "closed"
        reopening = triage.status not in (None, "closed") and current.status == "closed"
        members = self.member_alerts(investigation_id) if closing or reopening else []
        with self.db.transaction() as conn:
            if closing:
                disposition = triage.disposition or current.disposition
                _close_alerts(conn, investigation_id, members, disposition, now, actor)
            if reopening:
                _reopen_alerts(conn, investigation_id, members, now, actor)
            for name, old, new in changes:
                # ``name`` is one of the fixed column names above.
                conn.execute(
                    f"UPDATE investigations SET {name} = ?, updated_at = ? WHERE id = ?",  # noqa: S608
                    (new or None, now, investigation_id),
                )
                _note(conn, investigation_id, now, actor, name, f"{old or ''} -> {new or '(none)'}")
            if triage.comment and triage.comment.strip():
                _note(conn, investigation_id, now, actor, "comment", triage.comment.strip())
                # A comment changes the case too: retention counts from it (``expiry``).
                conn.execute(
                    "UPDATE investigations SET updated_at = ? WHERE id = ?", (now, investigation_id)
                )
        return self.get(investigation_id)

    def merge(self, target: str, others: Sequence[str], *, actor: str) -> Investigation:
        """Move every alert of ``others`` into ``target``; the others are closed, pointing there."""
        self.get(target)
        if not others or target in others:
            raise ConfigError(
                "merge needs other investigations than the one merged into",
                hint="name the investigations to merge into this one",
            )
        moving = {other: self.member_alerts(self.get(other).id) for other in others}
        now = time.time()
        with self.db.transaction() as conn:
            for other, alerts in moving.items():
                for alert in alerts:
                    add_alert(conn, target, alert, now, actor=actor)
                conn.execute(
                    "UPDATE investigations SET status = 'closed', updated_at = ? WHERE id = ?",
                    (now, other),
                )
                _note(conn, other, now, actor, "merged", f"into {target}")
                _note(conn, target, now, actor, "merged", f"{other} ({len(alerts)} alerts)")
        return self.get(target)

    def split(self, source: str, alert_ids: Sequence[str], *, actor: str) -> Investigation:
        """Move some alerts of ``source`` into a new investigation, which is returned."""
        current = self.get(source)
        members = {a.id: a for a in self.member_alerts(source)}
        strangers = [i for i in alert_ids if i not in members]
        if not alert_ids or strangers:
            raise ConfigError(
                f"alerts {', '.join(strangers) or '(none)'} are not in {source}",
                hint="pick some, not all, of this investigation's alerts to split off",
            )
        if len(set(alert_ids)) == len(members):
            raise ConfigError(
                "splitting off every alert leaves an empty investigation",
                hint="leave at least one alert where it is",
            )
        moving = sorted((members[i] for i in set(alert_ids)), key=lambda a: a.first_event_time)
        new_id = "inv-" + secrets.token_hex(6)
        now = time.time()
        first = moving[0]
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO investigations (id, title, priority, first_event_time, "
                "last_event_time, created_at, updated_at) VALUES (?, ?, 'low', ?, ?, ?, ?)",
                (
                    new_id,
                    f"Split from {current.title}",
                    first.first_event_time.timestamp(),
                    first.last_event_time.timestamp(),
                    now,
                    now,
                ),
            )
            for alert in moving:
                add_alert(conn, new_id, alert, now, actor=actor)
            _note(conn, new_id, now, actor, "split", f"from {source}")
            _note(conn, source, now, actor, "split", f"{len(moving)} alerts into {new_id}")
            _refit(conn, source)
        return self.get(new_id)

    def triage_alerts(
        self,
        alert_ids: Sequence[str],
        *,
        actor: str,
        status: Status | None = None,
        disposition: Disposition | None = None,
        assignee: str | None = None,
        comment: str | None = None,
    ) -> list[Alert]:
        """Bulk triage: the same change to every alert; none is changed if one id is unknown."""
        for alert_id in alert_ids:
            self.alerts.get(alert_id)
        return [
            self.alerts.update(
                alert_id,
                actor=actor,
                status=status,
                disposition=disposition,
                assignee=assignee,
                comment=comment,
            )
            for alert_id in dict.fromkeys(alert_ids)
        ]


def alert_moves(before: Sequence[Alert], after: Sequence[Alert]) -> dict[str, list[str]]:
    """The alerts a triage of their investigation closed or reopened, for the audit trail."""
    was = {alert.id: alert.status for alert in before}
    moves: dict[str, list[str]] = {}
    for alert in after:
        if alert.id in was and (was[alert.id] == "closed") != (alert.status == "closed"):
            key = "alerts_closed" if alert.status == "closed" else "alerts_reopened"
            moves.setdefault(key, []).append(alert.id)
    return moves


def _close_alerts(
    conn: sqlite3.Connection,
    investigation_id: str,
    members: Sequence[Alert],
    disposition: Disposition | None,
    now: float,
    actor: str,
) -> None:
    """Close the open alerts, remembering each one's triage before, for a reopening to restore.

    Alerts closed already (by hand, or by an earlier close) are left alone and not remembered.
    """
    conn.execute(
        "DELETE FROM investigation_closed_alerts WHERE investigation_id = ?", (investigation_id,)
    )
    for alert in members:
        if alert.status == "closed":
            continue
        conn.execute(
            "INSERT INTO investigation_closed_alerts VALUES (?, ?, ?, ?, ?)",
            (investigation_id, alert.id, alert.status, alert.disposition, disposition),
        )
        triage_in(
            conn,
            alert,
            now,
            actor=actor,
            status="closed",
            disposition=disposition,
            comment=f"closed with investigation {investigation_id}",
        )


def _reopen_alerts(
    conn: sqlite3.Connection,
    investigation_id: str,
    members: Sequence[Alert],
    now: float,
    actor: str,
) -> None:
    """Give the alerts that closing the investigation closed their triage before it back.

    Only those still in it and still closed as the investigation closed them: one that someone
    has triaged since, or moved elsewhere, is theirs; one closed by hand before stays closed.
    """
    closed = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT alert_id, status, disposition, closed_as FROM investigation_closed_alerts "
            "WHERE investigation_id = ?",
            (investigation_id,),
        )
    }
    conn.execute(
        "DELETE FROM investigation_closed_alerts WHERE investigation_id = ?", (investigation_id,)
    )
    for alert in members:
        if alert.id not in closed:
            continue
        status, disposition, closed_as = closed[alert.id]
        if alert.status != "closed" or alert.disposition != closed_as:
            continue
        triage_in(
            conn,
            alert,
            now,
            actor=actor,
            status=status,
            disposition=disposition or "",
            comment=f"reopened with investigation {investigation_id}",
        )


def _check(triage: Triage) -> None:
    for name, value, allowed in (
        ("status", triage.status, STATUSES),
        ("disposition", triage.disposition, DISPOSITIONS),
        ("priority", triage.priority, PRIORITIES),
    ):
        if value is not None and value not in allowed:
            raise ConfigError(f"unknown {name} {value!r}", hint=f"use one of {', '.join(allowed)}")


def _note(
    conn: sqlite3.Connection, investigation_id: str, at: float, actor: str, action: str, detail: str
) -> None:
    conn.execute(
        "INSERT INTO investigation_history VALUES (?, ?, ?, ?, ?)",
        (investigation_id, at, actor, action, detail),
    )


def _refit(conn: sqlite3.Connection, investigation_id: str) -> None:
    """Set the times and priority of an investigation from the alerts left in it."""
    rows = conn.execute(
        "SELECT min(a.first_event_time), max(a.last_event_time), group_concat(a.severity) "
        "FROM alerts a JOIN investigation_alerts m ON m.alert_id = a.id "
        "WHERE m.investigation_id = ?",
        (investigation_id,),
    ).fetchone()
    if rows[0] is None:
        return
    priorities = [s.lower() if s.lower() in PRIORITIES else "low" for s in rows[2].split(",")]
    conn.execute(
        "UPDATE investigations SET first_event_time = ?, last_event_time = ?, priority = ? "
        "WHERE id = ?",
        (rows[0], rows[1], max(priorities, key=priority_rank), investigation_id),
    )


def _row(row: sqlite3.Row) -> Investigation:
    subject_list = row["subject_list"]
    return Investigation(
        id=row["id"],
        title=row["title"],
        status=row["status"],
        disposition=row["disposition"],
        assignee=row["assignee"],
        priority=row["priority"],
        first_event_time=from_epoch(row["first_event_time"]),
        last_event_time=from_epoch(row["last_event_time"]),
        created_at=from_epoch(row["created_at"]),
        updated_at=from_epoch(row["updated_at"]),
        alert_count=row["alert_count"],
        subjects=tuple(sorted(subject_list.split("\n"))) if subject_list else (),
    )
