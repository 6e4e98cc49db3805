"""The sources stage's contract: messages with their positions, read in batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message as read from a broker (or a line of a file), with its position."""

    topic: str
    partition: int
    offset: int
    value: bytes
    received_time: datetime
    # The broker's timestamp: for Event Hubs the time the event was enqueued.
    enqueued_time: datetime | None = None


class Source(Protocol):
    """Yields batches of messages and is told when a batch is durably stored."""

    def poll_batch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Return up to ``max_messages`` messages, or fewer once ``timeout`` seconds pass."""
        ...

    def commit(self, messages: Sequence[Message]) -> None:
        """Record that ``messages`` (and everything before them) are durably stored."""
        ...

    def close(self) -> None:
        """Release connections; pending commits are flushed first."""
        ...
