"""The sources stage's contract: messages with their positions, read in batches."""

from __future__ import annotations

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
    """Yields batches of messages and is told what is durably stored (``KafkaSource`` is one)."""

    assignment: set[tuple[str, int]]

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Return up to ``max_messages`` messages, or fewer once ``timeout`` seconds pass."""
        ...

    def commit(self, offsets: dict[tuple[str, int], int], *, wait: bool) -> None:
        """Record the next offset to read per (topic, partition): all before it is stored."""
        ...

    def pause(self) -> None:
        """Stop fetching (the store is behind)."""
        ...

    def resume(self) -> None:
        """Fetch again."""
        ...

    def list_topics(self, timeout: float) -> list[str]:
        """Names of the topics the credential can see."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
