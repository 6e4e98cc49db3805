"""Where each rule's alerts about one entity lie in event time, so that findings join them.

A finding of a rule about an entity (user, address, resource) joins the alert of that rule and
entity whose events lie within the rule's ``dedup_minutes`` of its own; a finding that reaches
two such alerts joins them into one. So the alerts of a rule and entity are always more than
``dedup_minutes`` apart, and each is keyed by the bucket of ``dedup_minutes`` its first event
falls in: the same alerts, under the same keys, whatever order the events arrived in.
"""

from __future__ import annotations

from hubsight.detect.db import DetectDB

# The context key naming, on an alert merged away, the alert it joined.
MERGED_INTO = "merged_into"
# (first, last) event time of an alert, epoch seconds.
Span = tuple[float, float]


def session_prefix(rule_id: str, entity: str) -> str:
    """The dedup-key prefix of a rule's alerts about ``entity``; the bucket number follows it."""
    return f"{rule_id}|{entity}|"


class Sessions:
    """The spans of alerts by dedup-key prefix, read from the database once per prefix."""

    __slots__ = ("_db", "_spans")

    def __init__(self, db: DetectDB | None) -> None:
        # None: a replay, whose alerts all come from this engine.
        self._db = db
        self._spans: dict[str, dict[str, Span]] = {}

    def spans(self, prefix: str) -> dict[str, Span]:
        """The alerts (dedup key -> span) under ``prefix``."""
        known = self._spans.get(prefix)
        if known is None:
            known = self._spans[prefix] = self._load(prefix)
        return known

    def touching(self, prefix: str, first: float, last: float, width: float) -> list[str]:
        """Keys of the alerts under ``prefix`` within ``width`` of ``[first, last]``."""
        # A list, sorted only when it holds several: nearly every finding touches one alert or
        # none, and a generator sorted cost more than the test.
        found = [
            key
            for key, (lo, hi) in self.spans(prefix).items()
            if lo - width <= last and first <= hi + width
        ]
        if len(found) > 1:
            found.sort()
        return found

    def set(self, key: str, span: Span) -> None:
        """Record (or move) the span of the alert ``key``."""
        prefix = key[: key.rindex("|") + 1]
        self.spans(prefix)[key] = span

    def drop(self, key: str) -> None:
        """Forget the alert ``key`` (merged away or withdrawn)."""
        prefix = key[: key.rindex("|") + 1]
        self.spans(prefix).pop(key, None)

    def forget(self, key: str) -> None:
        """Forget the alert ``key`` (deleted) if its prefix was read; else nothing is read."""
        if "|" in key:
            known = self._spans.get(key[: key.rindex("|") + 1])
            if known is not None:
                known.pop(key, None)

    def _load(self, prefix: str) -> dict[str, Span]:
        if self._db is None:
            return {}
        # Keys sort by their bytes: every key starting with prefix is in [prefix, prefix + max).
        rows = self._db.rows(
            "SELECT dedup_key, first_event_time, last_event_time FROM alerts "
            "WHERE dedup_key >= ? AND dedup_key < ?",
            (prefix, prefix + "\U0010ffff"),
        )
        spans: dict[str, Span] = {}
        for row in rows:
            key = str(row["dedup_key"])
            # Only bucketed keys: an entity may itself contain "|".
            if key[len(prefix) :].isdigit():
                spans[key] = (float(row["first_event_time"]), float(row["last_event_time"]))
        return spans
