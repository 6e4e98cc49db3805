"""The notification outbox: what is due to be sent, recorded with the alerts that make it due.

The engine saves a batch's alerts, withdrawals and positions in one transaction, and ``queue``
runs inside it (``DetectionEngine.on_save``): one row per new alert and channel that takes it,
and one per withdrawn alert and channel that received it (or has it queued). ``Notifier.deliver``
sends the rows in the order queued and removes each in the transaction that records how it
ended (``notified``, or a dead letter). So a process killed between the save and the sends
sends them at its next start, and a delivery that succeeded is not sent again: only a process
dying after a receiver accepted one and before that commit sends it twice.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from hubsight.detect.alerts import Alert
from hubsight.detect.db import DetectDB
from hubsight.detect.sessions import MERGED_INTO

WITHDRAWN = "a late event showed this alert untrue"
_KEPT = "; hubsight keeps it because someone triaged it"
WITHDRAWN_KEPT = WITHDRAWN + _KEPT
# Rows read per query while delivering.
_PAGE = 100


def withdrawal_reason(alert: Alert, *, kept: bool) -> str:
    """Why ``alert`` was withdrawn: shown untrue, or merged into another alert of its rule."""
    merged = alert.context.get(MERGED_INTO)
    reason = (
        f"merged into alert {merged}, of the same rule about the same entity within its window"
        if merged
        else WITHDRAWN
    )
    return reason + (_KEPT if kept else "")


class Route(Protocol):
    """Which alerts a channel takes (``notify.Channel`` is one)."""

    name: str
    severities: tuple[str, ...]
    per: str


@dataclass(frozen=True, slots=True)
class Due:
    """One notification due: an alert for a channel, or with ``withdrawn`` (why) its follow-up."""

    seq: int
    alert: Alert
    channel: str
    withdrawn: str | None


def queue(
    conn: sqlite3.Connection,
    routes: Sequence[Route],
    alerts: Sequence[Alert],
    withdrawn: Sequence[Alert] = (),
    opened: Collection[str] = (),
) -> int:
    """Record, in the caller's transaction, the notifications ``alerts`` and ``withdrawn`` make
    due; how many.

    New, non-notable alerts go to each route that takes their severity (a route set
    ``per = "investigation"`` only those in ``opened``); a withdrawn alert's follow-up to each
    channel that received it or has it queued: whether that delivery succeeded is known only
    when the follow-up's turn comes (``Notifier.deliver`` sends it only then).
    """
    now = time.time()
    rows: list[tuple[str, str, str | None, bytes, float]] = []
    for alert in alerts:
        if alert.revision != 1 or alert.notable:
            continue
        body = msgspec.json.encode(alert)
        rows += [
            (alert.id, route.name, None, body, now)
            for route in routes
            if alert.severity.value in route.severities
            and (route.per == "alert" or alert.id in opened)
        ]
    for alert in withdrawn:
        channels = conn.execute(
            "SELECT channel FROM notified WHERE alert_id = ?1 "
            "UNION SELECT channel FROM outbox WHERE alert_id = ?1 AND withdrawn IS NULL "
            "ORDER BY channel",
            (alert.id,),
        ).fetchall()
        if not channels:
            continue
        # Run after the withdrawal's delete: an alert still there is one someone triaged.
        kept = conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert.id,)).fetchone()
        reason = withdrawal_reason(alert, kept=kept is not None)
        body = msgspec.json.encode(alert)
        rows += [(alert.id, str(channel), reason, body, now) for (channel,) in channels]
    conn.executemany(
        "INSERT INTO outbox (alert_id, channel, withdrawn, body, at) VALUES (?, ?, ?, ?, ?)", rows
    )
    return len(rows)


def pending(db: DetectDB) -> Iterator[Due]:
    """The notifications due, oldest first, including those queued while this runs."""
    after = 0
    while True:
        rows = db.rows(
            "SELECT seq, alert_id, channel, withdrawn, body FROM outbox WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after, _PAGE),
        )
        if not rows:
            return
        for row in rows:
            after = int(row["seq"])
            yield Due(
                seq=after,
                alert=msgspec.json.decode(row["body"], type=Alert),
                channel=str(row["channel"]),
                withdrawn=row["withdrawn"],
            )


def count(db: DetectDB) -> int:
    """How many notifications are due."""
    return int(db.rows("SELECT count(*) AS n FROM outbox")[0]["n"])
