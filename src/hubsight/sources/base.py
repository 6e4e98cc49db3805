"""The sources stage's contract: messages with their positions, read in batches.

A transport (Kafka and Event Hubs, or the in-memory one the tests use) is a ``SourceDriver``:
it opens a ``Source`` for a ``SourceConfig`` and explains that transport's failures. The
collector, ``hubsight source test`` and health see only these types; which driver serves a
configuration is decided once, in ``sources.registry``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from hubsight.sources.diagnose import Diagnosis, Problem

if TYPE_CHECKING:
    from hubsight.sources.config import SourceConfig


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message as read from a broker (or a line of a file), with its position."""

    topic: str
    partition: int
    offset: int
    value: bytes
    received_time: datetime
    # The broker's timestamp: for Event Hubs the time the event was enqueued.
    enqueued_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """Where one partition stands: committed offset, high watermark and the difference."""

    topic: str
    partition: int
    committed: int | None
    high_watermark: int | None

    @property
    def lag(self) -> int | None:
        """Messages not yet committed, when both ends are known."""
        if self.high_watermark is None:
            return None
        return max(self.high_watermark - (self.committed or 0), 0)


PartitionsCallback = Callable[[list[tuple[str, int]]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceHooks:
    """What a source tells its reader; called on the thread that polls, inside ``poll_batch``.

    ``on_revoke`` is called before partitions move to another reader (a rebalance, or
    ``close``): the reader stores and commits what it read from them before it returns.
    """

    on_error: Callable[[Diagnosis], None]
    on_assign: PartitionsCallback
    on_revoke: PartitionsCallback
    on_lag: Callable[[list[PartitionLag]], None]


class Source(Protocol):
    """Yields batches of messages and is told what is durably stored.

    Acknowledgement is explicit: nothing counts as read until ``commit`` names the next offset
    of its partition, and a reader only commits what the store has durably written. A new
    ``Source`` of the same configuration (after a crash or a reconnect) starts at the
    committed offsets, so what was read but never committed comes again.
    """

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

    def list_topics(self, timeout: float) -> list[str] | None:
        """Names of the topics the credential can see; None if the broker did not answer within
        ``timeout`` (it is down or stalled)."""
        ...

    def high_watermark(self, topic: str, partition: int, timeout: float) -> int | None:
        """The offset the partition's next message will get, as the broker says now; None if
        it cannot say."""
        ...

    def close(self) -> None:
        """Hand the partitions back (``on_revoke``) and release connections."""
        ...


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a connection test; ``status`` is ok, failed, warning or skipped."""

    name: str
    status: str
    detail: str
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """False only for a failed step."""
        return self.status != "failed"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"step": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


Check = tuple[str, Callable[[], Step]]


class SourceDriver(Protocol):
    """One transport: opens its sources, explains its failures and tests its connections.

    Adding a transport is a module with one of these and one line in ``sources.registry``.
    """

    def open(self, config: SourceConfig, hooks: SourceHooks) -> Source:
        """A reader of ``config``'s topics, positioned at the committed offsets."""
        ...

    def diagnose(self, config: SourceConfig, code_name: str, text: str) -> Diagnosis:
        """A failure of this transport (an error code and its text), classified, with a hint
        and without secrets."""
        ...

    def explain(self, config: SourceConfig, problem: Problem, message: str) -> Diagnosis:
        """A problem hubsight found itself (no data, a missing topic), with this transport's
        hint."""
        ...

    def checks(self, config: SourceConfig, timeout: float) -> list[Check]:
        """The steps of ``hubsight source test``, in order, each a name and its check."""
        ...
