"""The store stage's contract: durable, idempotent writes of events and ClickHouse SQL reads.

Callers write ClickHouse SQL with ``{name:Type}`` parameters only, so the embedded engine can be
swapped for a ClickHouse server or cluster without touching them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from hubsight.parsing.event import Event
from hubsight.store.engine_memory import EngineMemory

# (topic, partition) -> offset of the last message stored for one log name.
Offsets = dict[tuple[str, int], int]


class EventStore(Protocol):
    """Where events live."""

    def write(self, events: Sequence[Event]) -> None:
        """Store ``events`` atomically; when this returns they survive a crash."""
        ...

    def stored_offsets(self, log_name: str) -> Offsets:
        """The offset of the last stored message per (topic, partition) for ``log_name``."""
        ...

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read-only query with bound parameters; rows as dicts."""
        ...

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (a small INSERT) with bound parameters."""
        ...

    def check_backup(self) -> None:
        """Raise ``StoreError`` when ``backup`` cannot copy this store (before anything is made)."""
        ...

    def backup(self, target: Path) -> None:
        """Write a consistent copy of the stored events to the new directory ``target``."""
        ...

    def memory(self) -> EngineMemory | None:
        """What the engine holds in this process's memory; None when it runs elsewhere."""
        ...

    def close(self) -> None:
        """Flush and release the engine."""
        ...
