"""How long events are kept, per log set, enforced by the events table's TTL.

The policy lives in the catalog (SQLite) so that the CLI can change it while ``hubsight run``
holds the event store; the running service applies a changed policy within a second, and
``run`` applies it when it starts. ClickHouse deletes expired rows during merges (at the latest
``merge_with_ttl_timeout``, 4 hours, after they expire). Alerts and investigations live in the
detection database and outlive the events they cite: their own policy (``CASES``, kept for ever
unless set) says how many days after they were closed they go (``detect.expiry``).
"""

from __future__ import annotations

from typing import Any

from hubsight.errors import ConfigError
from hubsight.parsing.event import LogSet
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

DEFAULT_DAYS = 90
# Unparsed Data is kept to diagnose parsing, not to investigate: two weeks.
DEFAULT_DAYS_BY_LOG_SET = {LogSet.UNPARSED_DATA.value: 14}
MAX_DAYS = 36_500

Policy = dict[str, int]

# The name `hubsight retention` and the API give the policy of closed alerts and investigations.
# Log set names are title case ("Third Party Alerts"), so a lower-case word is never one.
CASES = "alerts"
# Spellings of "keep them for ever" (the default).
FOREVER = ("off", "forever")


def default_policy() -> Policy:
    """Days kept for each log set before anything is set."""
    return {s.value: DEFAULT_DAYS_BY_LOG_SET.get(s.value, DEFAULT_DAYS) for s in LogSet}


def checked(log_set: str, days: int) -> tuple[str, int]:
    """``(log_set, days)`` if both can be used, else a ``ConfigError`` naming the problem."""
    names = [s.value for s in LogSet]
    if log_set not in names:
        raise ConfigError(
            f"there is no log set {log_set!r}",
            hint=f"the log sets are {', '.join(repr(n) for n in names)}",
        )
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(
            f"{days} is not a number of days events can be kept",
            hint=f"give a whole number from 1 to {MAX_DAYS}",
        )
    return log_set, days


def checked_case_days(value: object) -> int | None:
    """Days closed alerts and investigations are kept (None: for ever), from a whole number,
    its text, None or the words ``off``/``forever``; else a ``ConfigError`` naming the fix."""
    hint = f"give a whole number of days from 1 to {MAX_DAYS}, or `off` to keep them for ever"
    if value is None or (isinstance(value, str) and value.strip().lower() in FOREVER):
        return None
    shown = value if isinstance(value, int | float) else repr(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise ConfigError(f"{shown} is not a number of days closed alerts can be kept", hint=hint)
    return value


def describe_case_days(days: int | None) -> str:
    """The policy of closed alerts and investigations in words."""
    return "for ever" if days is None else f"{days} days after their last change"


def ttl_expression(policy: Policy) -> str:
    """The events table's TTL, in the form ClickHouse shows it back (``engine_full``).

    One rule per log set; events of a log set not named (one added later) are kept for the
    default. Log set names are ours (``LogSet``), so they are quoted, not bound. The arithmetic
    stays in ``DateTime64``: a 32-bit ``DateTime`` ends in 2106, so today + 100 years (or an
    event dated past 2106 by a skewed clock) wrapped round to the past and expired at once.
    """
    rules = [
        f"timestamp + toIntervalDay({days}) WHERE log_set = {_quote(log_set)}"
        for log_set, days in sorted(policy.items())
    ]
    others = ", ".join(_quote(n) for n in sorted(policy))
    rules.append(f"timestamp + toIntervalDay({DEFAULT_DAYS}) WHERE log_set NOT IN ({others})")
    return ", ".join(rules)


def apply(store: EventStore, policy: Policy) -> bool:
    """Give the events table ``policy``'s TTL unless it has it already; whether it changed.

    A changed TTL is applied to the stored parts too (ClickHouse rewrites what expired), so it
    is only issued when it differs. That rewrite runs in ClickHouse's background (a mutation it
    resumes after a restart): done inside the ALTER it held the service's loop for minutes over
    a store of millions of events, while nothing was stored.
    """
    wanted = ttl_expression(policy)
    rows = store.select(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name = {t:String}",
        {"t": EVENTS_TABLE},
    )
    if rows and f"TTL {wanted} SETTINGS" in str(rows[0]["engine_full"]):
        return False
    store.execute(
        f"ALTER TABLE {EVENTS_TABLE} MODIFY TTL {wanted} SETTINGS materialize_ttl_after_modify = 0"
    )
    store.execute(f"ALTER TABLE {EVENTS_TABLE} MATERIALIZE TTL SETTINGS mutations_sync = 0")
    return True


def usage(store: EventStore, policy: Policy) -> list[dict[str, Any]]:
    """Per log set: days kept, events stored and the disk they take.

    The disk figure is the table's size shared out by event count (ClickHouse sizes parts, not
    log sets), so it is an estimate; the parts are sorted by log set, so it is a close one.
    """
    counts = {
        row["log_set"]: int(row["n"])
        for row in store.select(
            f"SELECT log_set, count() AS n FROM {EVENTS_TABLE} GROUP BY log_set"  # noqa: S608
        )
    }
    (disk,) = store.select(
        "SELECT toInt64(sum(bytes_on_disk)) AS bytes FROM system.parts WHERE active "
        "AND database = currentDatabase() AND table = {t:String}",
        {"t": EVENTS_TABLE},
    )
    total_events = sum(counts.values())
    total_bytes = int(disk["bytes"] or 0)
    return [
        {
            "log_set": log_set,
            "days": days,
            "events": counts.get(log_set, 0),
            "bytes_on_disk": round(total_bytes * counts.get(log_set, 0) / total_events)
            if total_events
            else 0,
        }
        for log_set, days in sorted(policy.items())
    ]


def describe_bytes(count: int) -> str:
    """A byte count for people: 512 B, 3.4 MB, 1.2 GB."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
