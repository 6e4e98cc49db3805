"""What the embedded ClickHouse engine holds in hubsight's process, read from the engine itself.

The engine allocates with a jemalloc of its own, apart from the C library's malloc that Python,
SQLite and the Kafka client use, so its figures split the process's heap in two: ``resident``
is the engine's share of the process's anonymous memory (its live allocations, the pages it
freed in the last few seconds and has not handed back yet, its metadata), the rest is
everything else's. ``tracked`` is the engine's own account (``MemoryTracking``, what its memory
cap counts); the caches are bounded by ``ENGINE_SETTINGS`` (``store/embedded.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Label -> the engine's metric of the bytes that cache holds (system.metrics).
CACHES: Mapping[str, str] = {
    "mark": "MarkCacheBytes",
    "index_mark": "IndexMarkCacheBytes",
    "primary_index": "PrimaryIndexCacheBytes",
    "uncompressed": "UncompressedCacheBytes",
    "index_uncompressed": "IndexUncompressedCacheBytes",
    "text_index_tokens": "TextIndexTokensCacheBytes",
    "text_index_header": "TextIndexHeaderCacheBytes",
    "text_index_postings": "TextIndexPostingsCacheBytes",
    "query_condition": "QueryConditionCacheBytes",
    "compiled_expression": "CompiledExpressionCacheBytes",
    "query": "QueryCacheBytes",
}
_TRACKED = ("MemoryTracking", "MergesMutationsMemoryTracking")
# jemalloc's summary line (malloc_stats_print), e.g. "Allocated: 35, active: 37, metadata: 15
# (n_thp 0, ...), resident: 50, mapped: 71, retained: 4207": bytes.
_JEMALLOC = re.compile(r"Allocated: (\d+), active: \d+, metadata: \d+.*?, resident: (\d+),")

Select = Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class EngineMemory:
    """The engine's memory in bytes; ``allocated`` and ``resident`` are None when its
    allocator's statistics could not be read."""

    tracked: int
    merges: int
    # Primary keys loaded into the parts' memory (outside the primary index cache).
    primary_keys: int
    caches: Mapping[str, int] = field(default_factory=dict)
    allocated: int | None = None
    resident: int | None = None


def read_engine_memory(select: Select) -> EngineMemory:
    """The embedded engine's memory, through ``select`` (a store's read query, no parameters).

    Three queries: a few system metrics, the parts' primary keys, and jemalloc's statistics
    (~100 KB of text, ~10 ms: fine for a scrape, not for a hot path).
    """
    wanted = [*_TRACKED, *CACHES.values()]
    listed = ", ".join(f"'{name}'" for name in wanted)
    metrics = {
        row["metric"]: int(row["value"])
        for row in select(f"SELECT metric, value FROM system.metrics WHERE metric IN ({listed})")  # noqa: S608 - constants
    }
    (keys,) = select("SELECT sum(primary_key_bytes_in_memory) AS n FROM system.parts WHERE active")
    (stats,) = select("SELECT * FROM system.jemalloc_stats")
    allocated, resident = jemalloc_figures(str(next(iter(stats.values()), "")))
    return EngineMemory(
        tracked=metrics.get("MemoryTracking", 0),
        merges=metrics.get("MergesMutationsMemoryTracking", 0),
        primary_keys=int(keys["n"] or 0),
        caches={label: metrics.get(name, 0) for label, name in CACHES.items()},
        allocated=allocated,
        resident=resident,
    )


def jemalloc_figures(text: str) -> tuple[int | None, int | None]:
    """Allocated and resident bytes from jemalloc's statistics text; None, None without them."""
    found = _JEMALLOC.search(text)
    if found is None:
        return None, None
    return int(found[1]), int(found[2])
