"""The raw-record paths Log Search offers to complete, learned from a sample of recent events.

Every event keeps its Azure record as it came; LEQL reaches into it with dotted paths
(``properties.status.errorCode``, or ``source_json.<key>`` for a top-level key). Which paths
exist depends on the log, so they are read from the newest events of the chosen log sets and
names, counted, and kept for a minute per scope.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hubsight.query.keys import RAW_PREFIX
from hubsight.query.params import render
from hubsight.store.base import EventStore

SAMPLE_EVENTS = 300
# The newest events of a scope are looked for in this span before its newest one, so the
# sample reads a few recent parts, not the whole table.
_RECENT_SPAN = "INTERVAL 1 DAY"
MAX_PATHS = 500
_CACHE_S = 60.0
_CACHED_SCOPES = 64
# A segment LEQL reads as part of one key: no dots, spaces, quotes, brackets or operators.
_SEGMENT = re.compile(r"^[A-Za-z0-9_@$][A-Za-z0-9_@$-]*$")
_decode = msgspec.json.Decoder()


Scope = tuple[tuple[str, ...], tuple[str, ...]]


def record_paths(record: object) -> Iterator[str]:
    """The LEQL keys of every scalar value in one raw record (arrays are not addressable)."""
    if not isinstance(record, dict):
        return
    stack: list[tuple[str, dict[str, Any]]] = [("", record)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if not _SEGMENT.match(key):
                continue
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                stack.append((path, value))
            elif not isinstance(value, list) and value is not None:
                # A bare word names a normalized field; a top-level raw key needs the prefix.
                yield path if prefix else RAW_PREFIX + path


def sample_paths(store: EventStore, scope: Scope) -> tuple[list[str], int]:
    """Raw paths of the newest events in ``scope``, most frequent first; and the sample size."""
    log_sets, log_names = scope
    where = ["1"]
    params: dict[str, Any] = {"n": render(SAMPLE_EVENTS)}
    if log_sets:
        where.append("log_set IN {sets:Array(String)}")
        params["sets"] = render(list(log_sets))
    if log_names:
        where.append("log_name IN {names:Array(String)}")
        params["names"] = render(list(log_names))
    scope_sql = " AND ".join(where)
    # Built from the constants above only; the user's choices travel as parameters.
    sql = (
        f"SELECT raw FROM events WHERE {scope_sql} AND timestamp >= "  # noqa: S608
        f"(SELECT max(timestamp) FROM events WHERE {scope_sql}) - {_RECENT_SPAN} "
        "ORDER BY timestamp DESC LIMIT {n:UInt32}"
    )
    rows = store.select(sql, params)
    counts: Counter[str] = Counter()
    for row in rows:
        try:
            record = _decode.decode(row["raw"])
        except msgspec.DecodeError:
            continue  # Unparsed Data keeps records that are not JSON at all
        # Case-insensitively one path: LEQL matches path segments without regard to case.
        counts.update({path.lower(): path for path in record_paths(record)}.values())
    paths = sorted(counts, key=lambda p: (-counts[p], p))
    return paths[:MAX_PATHS], len(rows)


@dataclass
class RawPathCache:
    """Sampled paths per scope, each kept for a minute."""

    ttl_s: float = _CACHE_S
    _entries: OrderedDict[Scope, tuple[float, list[str], int]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(
        self, store: EventStore, log_sets: Sequence[str], log_names: Sequence[str]
    ) -> tuple[list[str], int]:
        """The paths of this scope, sampled now or within the last ``ttl_s`` seconds."""
        scope: Scope = (tuple(sorted(set(log_sets))), tuple(sorted(set(log_names))))
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(scope)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1], cached[2]
        paths, sampled = sample_paths(store, scope)
        with self._lock:
            self._entries[scope] = (now, paths, sampled)
            self._entries.move_to_end(scope)
            while len(self._entries) > _CACHED_SCOPES:
                self._entries.popitem(last=False)
        return paths, sampled
