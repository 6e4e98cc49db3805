"""Alerts and notables: what the engine raised, and the triage people do on them.

The engine owns the detection part of an alert (evidence, times, baseline text); people own the
triage part (status, disposition, assignee, comments). They live in separate columns so that an
alert updated by new evidence keeps the analyst's status, and every triage change is recorded in
``alert_history``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

import msgspec

from hubsight.detect.base import EventRef, Severity, ref_order
from hubsight.detect.baseline import from_epoch
from hubsight.detect.db import DetectDB, parted
from hubsight.errors import ConfigError, NotFoundError

Status = Literal["open", "investigating", "closed"]
Disposition = Literal["benign", "malicious", "false_positive"]
STATUSES: tuple[Status, ...] = ("open", "investigating", "closed")
DISPOSITIONS: tuple[Disposition, ...] = ("benign", "malicious", "false_positive")
# Evidence is capped; the earliest events are kept, which is the same set whatever the order the
# events arrived in.
MAX_EVIDENCE = 100


class Alert(msgspec.Struct, kw_only=True):
    """One alert or notable, deduplicated by ``dedup_key``."""

    id: str
    dedup_key: str
    rule_id: str
    title: str
    severity: Severity
    notable: bool
    technique: str
    runbook: str
    first_event_time: datetime
    last_event_time: datetime
    evidence: list[EventRef]
    user: str | None = None
    source_ip: str | None = None
    baseline: str | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    # 1 when the alert was just created; each update by new evidence adds one. Only revision 1
    # is notified, so an update (or a replay after a restart) never notifies twice.
    revision: int = 1
    # Triage, owned by people; filled in when read from the database.
    status: Status = "open"
    disposition: Disposition | None = None
    assignee: str | None = None

    def summary(self) -> dict[str, Any]:
        """The alert as the command-line contract prints it (plus id and triage)."""
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": str(self.severity),
            "notable": self.notable,
            "user": self.user,
            "source_ip": self.source_ip,
            "first_event_time": self.first_event_time.isoformat(),
            "last_event_time": self.last_event_time.isoformat(),
            "baseline": self.baseline,
            "evidence": [ref.as_dict() for ref in self.evidence],
            "status": self.status,
            "disposition": self.disposition,
            "assignee": self.assignee,
            "revision": self.revision,
        }


def alert_id(dedup_key: str) -> str:
    """A stable id derived from the dedup key, so replays name alerts the same way."""
    return hashlib.sha256(dedup_key.encode()).hexdigest()[:16]


# Context values gathered across an alert's findings instead of the last one kept: an alert that
# stands for several vendor alerts lists every one of their ids.
GATHERED_CONTEXT = frozenset({"vendor_alert_ids"})


def merge_context(context: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """An alert's ``context`` with a finding's ``new`` one added: the last value wins, lists of
    ``GATHERED_CONTEXT`` keys are joined (first seen first, no repeats, capped). ``context``
    itself when ``new`` changes nothing in it."""
    if GATHERED_CONTEXT.isdisjoint(new) and all(
        key in context and ((held := context[key]) is value or held == value)
        for key, value in new.items()
    ):
        return context
    merged = {**context, **new}
    for key in GATHERED_CONTEXT.intersection(new):
        old, value = context.get(key), new[key]
        if isinstance(old, list) and isinstance(value, list):
            merged[key] = (old + [v for v in value if v not in old])[:MAX_EVIDENCE]
    return merged


def merge_evidence(old: list[EventRef], new: Sequence[EventRef]) -> list[EventRef]:
    """The union of two evidence lists, earliest first, capped; ``old`` itself when unchanged."""
    if not old:
        return sorted(set(new), key=ref_order)[:MAX_EVIDENCE]
    # ``old`` is an alert's list, sorted: a finding mostly cites events after its last (a loud
    # rule's alert, which takes a finding per event) or events it holds already (a
    # correlation's window). Those are found by their time and place in it, not by hashing all
    # of it; the full order (``ref_order``, slower) only settles refs of the same time.
    last = old[-1]
    last_ts = last.timestamp
    later: list[EventRef] = []
    inside: list[EventRef] = []
    for ref in new:
        ts = ref.timestamp
        if ts > last_ts or (ts == last_ts and ref_order(ref) > ref_order(last)):
            later.append(ref)
            continue
        at = bisect_left(old, ts, key=_timestamp)
        while old[at] != ref:
            at += 1
            if at == len(old) or old[at].timestamp != ts:
                inside.append(ref)
                break
    if inside:
        return sorted({*old, *inside, *later}, key=ref_order)[:MAX_EVIDENCE]
    if not later or len(old) >= MAX_EVIDENCE:
        # Nothing new, or a full list of earlier events whose end the new ones fall off.
        return old if len(old) <= MAX_EVIDENCE else old[:MAX_EVIDENCE]
    if len(later) > 1:
        later = sorted(set(later), key=ref_order)
    merged = old + later
    return merged if len(merged) <= MAX_EVIDENCE else merged[:MAX_EVIDENCE]


_timestamp = attrgetter("timestamp")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Alert).decode
_decode_refs = msgspec.json.Decoder(list[EventRef]).decode

# An alert is stored as its row (``alerts``: ``body``, the alert without its evidence, and
# ``tail``, the end of its evidence) and the rest of its evidence in parts (``alert_refs``,
# read in ``start`` order, then the tail): the parts hold the first ``parted(len)`` refs (whole
# multiples of ``PART_REFS``), the tail the others. A batch that adds events after an alert's
# last rewrites the tail with the row, which it writes anyway (its times changed), and appends
# a part only once the tail fills; one that changes the rest writes the evidence again. So a
# loud rule's alert is not encoded and written whole, a hundred event references, every batch;
# nor does each batch that adds a reference write a page of ``alert_refs`` per alert (two
# fifths of the pages a batch wrote with SigmaHQ's rules, when every addition was a part).
_COLUMNS = "id, status, disposition, assignee, body, tail"
_WITH_REFS = (
    "SELECT a.*, r.refs FROM ({}) a LEFT JOIN alert_refs r ON r.alert_id = a.id ORDER BY {}r.start"
)
_ONE = f"SELECT {_COLUMNS} FROM alerts WHERE {{}} = ?"  # noqa: S608 - constants
_BY_DEDUP_KEY = _WITH_REFS.format(_ONE.format("dedup_key"), "")
_BY_ID = _WITH_REFS.format(_ONE.format("id"), "")
_BY_DEDUP_KEYS = f"SELECT {_COLUMNS} FROM alerts WHERE dedup_key IN ({{}})"  # noqa: S608
_UPSERT = (
    "INSERT INTO alerts (id, dedup_key, rule_id, severity, notable, user, source_ip, "
    "first_event_time, last_event_time, created_at, updated_at, body, tail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET "
    "severity = excluded.severity, user = excluded.user, source_ip = excluded.source_ip, "
    "first_event_time = excluded.first_event_time, "
    "last_event_time = excluded.last_event_time, updated_at = excluded.updated_at, "
    "body = excluded.body, tail = excluded.tail"
)
_UPDATE = (
    "UPDATE alerts SET severity = ?, first_event_time = ?, last_event_time = ?, updated_at = ?, "
    "body = ? WHERE dedup_key = ?"
)
_UPDATE_WITH_TAIL = _UPDATE.replace("body = ?", "body = ?, tail = ?")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFilter:
    """Filters of the alert list."""

    status: Status | None = None
    severity: Severity | None = None
    rule_id: str | None = None
    user: str | None = None
    source_ip: str | None = None
    assignee: str | None = None
    notable: bool | None = None
    since: datetime | None = None
    limit: int = 100
    # Match part of the user and of the rule id (the console's filters) instead of all of it.
    partial: bool = False


class AlertStore:
    """Reads and triages alerts in the detection database."""

    def __init__(self, db: DetectDB) -> None:
        self.db = db

    def by_dedup_key(self, dedup_key: str) -> Alert | None:
        """The alert with this dedup key, or None."""
        found = _alerts(self.db.rows(_BY_DEDUP_KEY, (dedup_key,)))
        return found[0] if found else None

    def by_dedup_keys(self, dedup_keys: Sequence[str]) -> list[Alert]:
        """The alerts with these dedup keys (those there are), in one query per 500 keys."""
        alerts: list[Alert] = []
        for start in range(0, len(dedup_keys), 500):
            chunk = dedup_keys[start : start + 500]
            inner = _BY_DEDUP_KEYS.format(", ".join("?" * len(chunk)))
            alerts += _alerts(self.db.rows(_WITH_REFS.format(inner, "a.id, "), chunk))
        return alerts

    def get(self, alert_id: str) -> Alert:
        """The alert with this id; NotFoundError when there is none."""
        found = _alerts(self.db.rows(_BY_ID, (alert_id,)))
        if not found:
            raise NotFoundError(
                f"no alert with id {alert_id!r}", hint="list alert ids with `hubsight alerts list`"
            )
        return found[0]

    def find(self, flt: AlertFilter = AlertFilter()) -> list[Alert]:
        """Alerts matching ``flt``, most recent event first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (
            ("status", flt.status),
            ("severity", flt.severity and str(flt.severity)),
            ("rule_id", flt.rule_id),
            ("user", flt.user and flt.user.lower()),
            ("source_ip", flt.source_ip),
            ("assignee", flt.assignee),
        ):
            if value is None:
                continue
            if flt.partial and column in ("user", "rule_id"):
                where.append(f"{column} LIKE ? ESCAPE '\\'")
                params.append("%" + like_escape(value) + "%")
            else:
                where.append(f"{column} = ?")
                params.append(value)
        if flt.notable is not None:
            where.append("notable = ?")
            params.append(int(flt.notable))
        if flt.since is not None:
            where.append("last_event_time >= ?")
            params.append(flt.since.timestamp())
        params.append(flt.limit)
        # Only the fixed column names above are interpolated; values are bound.
        latest = (
            f"SELECT {_COLUMNS}, last_event_time FROM alerts WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY last_event_time DESC, id LIMIT ?"
        )
        return _alerts(
            self.db.rows(_WITH_REFS.format(latest, "a.last_event_time DESC, a.id, "), params)
        )

    def dedup_keys(self, *, user: str, notable: bool, since: datetime) -> list[str]:
        """Dedup keys of the alerts (or notables) about ``user`` whose last event is at or after
        ``since``, most recent first."""
        rows = self.db.rows(
            "SELECT dedup_key FROM alerts WHERE user = ? AND notable = ? AND last_event_time >= ? "
            "ORDER BY last_event_time DESC, id",
            (user.lower(), int(notable), since.timestamp()),
        )
        return [str(row["dedup_key"]) for row in rows]

    def save(
        self,
        conn: sqlite3.Connection,
        alerts: Sequence[Alert],
        now: float,
        *,
        stored: Mapping[str, list[EventRef]] | None = None,
    ) -> None:
        """Insert or update the detection part of ``alerts`` inside the engine's transaction.

        ``stored`` holds, by dedup key, the evidence of those stored before as it is stored:
        what they gained after it is appended. The others' evidence is written whole.
        """
        stored = stored or {}
        rewritten: list[tuple[str]] = []
        parts: list[tuple[str, int, bytes]] = []
        rows: list[tuple[Any, ...]] = []
        # Alerts stored before, updated by key (an upsert first tries an insert) and their tail
        # written only when their evidence changed: ``updated`` with it, ``kept`` without.
        updated: list[tuple[Any, ...]] = []
        kept: list[tuple[Any, ...]] = []
        for alert in alerts:
            refs = alert.evidence
            cut = parted(len(refs))
            before = stored.get(alert.dedup_key)
            body = _encode(msgspec.structs.replace(alert, evidence=[]))
            first, last = alert.first_event_time.timestamp(), alert.last_event_time.timestamp()
            if refs is before:
                # Unchanged: the folder keeps the list it was given when nothing joined it.
                kept.append((str(alert.severity), first, last, now, body, alert.dedup_key))
                continue
            if before is not None and refs[: len(before)] == before:
                # Appended to: the refs that now fill parts are added as one.
                held = parted(len(before))
                if cut > held:
                    parts.append((alert.id, held, _encode(refs[held:cut])))
                tail = _encode(refs[cut:])
                updated.append((str(alert.severity), first, last, now, body, tail, alert.dedup_key))
                continue
            rewritten.append((alert.id,))
            if cut:
                parts.append((alert.id, 0, _encode(refs[:cut])))
            rows.append(
                (
                    alert.id,
                    alert.dedup_key,
                    alert.rule_id,
                    str(alert.severity),
                    int(alert.notable),
                    alert.user,
                    alert.source_ip,
                    first,
                    last,
                    now,
                    now,
                    body,
                    _encode(refs[cut:]),
                )
            )
        conn.executemany(_UPSERT, rows)
        found = conn.executemany(_UPDATE_WITH_TAIL, updated).rowcount
        found += conn.executemany(_UPDATE, kept).rowcount
        conn.executemany("DELETE FROM alert_refs WHERE alert_id = ?", rewritten)
        conn.executemany("INSERT INTO alert_refs VALUES (?, ?, ?)", parts)
        if found < len(updated) + len(kept):
            # Some row the engine stored is gone (deleted behind its back): those alerts are
            # written whole again, as new ones are, so that none is lost or kept in part.
            again = {row[-1] for row in (*updated, *kept)}
            self.save(conn, [alert for alert in alerts if alert.dedup_key in again], now)

    def update(
        self,
        alert_id: str,
        *,
        actor: str,
        status: Status | None = None,
        disposition: Disposition | None = None,
        assignee: str | None = None,
        comment: str | None = None,
    ) -> Alert:
        """Change triage fields and/or add a comment; each change goes into the history."""
        current = self.get(alert_id)
        if status is not None and status not in STATUSES:
            raise ConfigError(
                f"unknown status {status!r}", hint=f"use one of {', '.join(STATUSES)}"
            )
        if disposition is not None and disposition not in DISPOSITIONS:
            raise ConfigError(
                f"unknown disposition {disposition!r}", hint=f"use one of {', '.join(DISPOSITIONS)}"
            )
        with self.db.transaction() as conn:
            triage_in(
                conn,
                current,
                time.time(),
                actor=actor,
                status=status,
                disposition=disposition,
                assignee=assignee,
                comment=comment,
            )
        return self.get(alert_id)

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        """Triage changes and comments of an alert, oldest first."""
        rows = self.db.rows(
            "SELECT at, actor, action, detail FROM alert_history WHERE alert_id = ? ORDER BY at",
            (alert_id,),
        )
        return history_docs(rows)


def triage_in(
    conn: sqlite3.Connection,
    current: Alert,
    now: float,
    *,
    actor: str,
    status: Status | None = None,
    disposition: Disposition | Literal[""] | None = None,
    assignee: str | None = None,
    comment: str | None = None,
) -> None:
    """Change an alert's triage fields inside the caller's transaction, each into its history.

    ``None`` leaves a field as it is; an empty assignee unassigns, an empty disposition clears.
    """
    changes = [
        (name, old, new)
        for name, old, new in (
            ("status", current.status, status),
            ("disposition", current.disposition, disposition),
            ("assignee", current.assignee, assignee),
        )
        # An empty assignee unassigns, as on an investigation.
        if new is not None and (new or None) != old
    ]
    if changes or comment:
        # When it last changed, which case retention counts from (``expiry``).
        conn.execute("UPDATE alerts SET updated_at = ? WHERE id = ?", (now, current.id))
    for name, old, new in changes:
        # ``name`` is one of the three triage columns listed above.
        conn.execute(f"UPDATE alerts SET {name} = ? WHERE id = ?", (new or None, current.id))  # noqa: S608
        conn.execute(
            "INSERT INTO alert_history VALUES (?, ?, ?, ?, ?)",
            (current.id, now, actor, name, f"{old or ''} -> {new or '(none)'}"),
        )
    if comment:
        conn.execute(
            "INSERT INTO alert_history VALUES (?, ?, ?, 'comment', ?)",
            (current.id, now, actor, comment),
        )


def history_docs(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """History rows (``at``, ``actor``, ``action``, ``detail``) as JSON-ready dicts."""
    return [
        {
            "at": from_epoch(row["at"]).isoformat(),
            "actor": row["actor"],
            "action": row["action"],
            "detail": row["detail"],
        }
        for row in rows
    ]


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _alerts(rows: list[sqlite3.Row]) -> list[Alert]:
    """Alerts from rows of an alert (with its tail) and one part of its evidence each, parts in
    order."""
    alerts: list[Alert] = []
    alert: Alert | None = None
    tail = b"[]"
    for row in rows:
        if alert is None or alert.id != row["id"]:
            if alert is not None:
                alert.evidence += _decode_refs(tail)
            alert = _decode(row["body"])
            alert.status = row["status"]
            alert.disposition = row["disposition"]
            alert.assignee = row["assignee"]
            tail = row["tail"]
            alerts.append(alert)
        if row["refs"] is not None:
            alert.evidence += _decode_refs(row["refs"])
    if alert is not None:
        alert.evidence += _decode_refs(tail)
    return alerts
