"""A broker in memory: topics of partitions, consumer groups and committed offsets.

Part of the package, like httpx's ``MockTransport``: the collector's exactly-once logic
(commit only what is stored, skip what was stored before a crash, drain before a rebalance) is
tested on it without a broker. It keeps Kafka's semantics where the collector depends on them:
a reader starts at its group's committed offsets (else at the start or the end, as
``start_from`` says), offsets are per partition and only grow, ``rebalance`` revokes every
partition and assigns it again from the committed offsets, ``close`` revokes first. One reader
per group takes every partition (no splitting between members).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hubsight.sources.base import Check, Message, PartitionLag, SourceHooks, Step
from hubsight.sources.config import SourceConfig
from hubsight.sources.diagnose import Diagnosis, Problem, classify, hint_for

_ENDPOINT = "memory"


@dataclass(slots=True)
class _Partition:
    values: list[tuple[bytes, datetime | None]] = field(default_factory=list)


class MemoryBroker:
    """Topics, partitions and committed offsets per consumer group, safe across threads."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._errors: list[tuple[str, str]] = []
        self._epoch = 0
        # Every commit in order, (group, topic, partition, next offset), every assignment
        # with the offsets it starts from, and how many messages each poll that brought any
        # handed over: what tests check.
        self.commits: list[tuple[str, str, int, int]] = []
        self.assignments: list[dict[tuple[str, int], int]] = []
        self.polls: list[int] = []

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Make ``topic`` with ``partitions`` empty partitions (existing ones are kept)."""
        with self._changed:
            existing = self._topics.setdefault(topic, [])
            existing.extend(_Partition() for _ in range(partitions - len(existing)))

    def produce(
        self, topic: str, value: bytes, *, partition: int = 0, enqueued: datetime | None = None
    ) -> int:
        """Append one message; its offset."""
        with self._changed:
            partitions = self._topics.get(topic)
            if partitions is None or partition >= len(partitions):
                raise ValueError(f"no partition {partition} of topic {topic!r}")
            log = partitions[partition].values
            log.append((value, enqueued))
            self._changed.notify_all()
            return len(log) - 1

    def recreate(self, topic: str) -> None:
        """Delete and create ``topic`` again: offsets start at 0, committed offsets are gone."""
        with self._changed:
            count = len(self._topics.get(topic, []))
            self._topics[topic] = [_Partition() for _ in range(count)]
            for key in [k for k in self._committed if k[1] == topic]:
                del self._committed[key]
            self._epoch += 1

    def forget_commits(self, group: str = "hubsight") -> None:
        """Drop ``group``'s committed offsets, as a crash between store writes and their commits
        would: its next reader reads everything again."""
        with self._changed:
            for key in [k for k in self._committed if k[0] == group]:
                del self._committed[key]
            self._epoch += 1

    def committed(self, topic: str, partition: int, group: str = "hubsight") -> int | None:
        """The next offset ``group`` will read from the partition, if it committed one."""
        with self._changed:
            return self._committed.get((group, topic, partition))

    def report_error(self, code_name: str, text: str) -> None:
        """Have the next poll of a reader report this client error."""
        with self._changed:
            self._errors.append((code_name, text))

    def rebalance(self) -> None:
        """Revoke every reader's partitions and assign them again from the committed offsets."""
        with self._changed:
            self._epoch += 1
            self._changed.notify_all()

    def driver(self) -> MemoryDriver:
        """A driver whose sources read this broker."""
        return MemoryDriver(self)

    # -- used by MemorySource --
    def _partitions(self, pattern: str | None, topics: list[str]) -> list[tuple[str, int]]:
        with self._changed:
            names = [t for t in self._topics if (re.match(pattern, t) if pattern else t in topics)]
            return [(t, p) for t in sorted(names) for p in range(len(self._topics[t]))]

    def _high(self, topic: str, partition: int) -> int:
        return len(self._topics[topic][partition].values)


class MemorySource:
    """One reader of a ``MemoryBroker`` for one source configuration."""

    def __init__(self, broker: MemoryBroker, config: SourceConfig, hooks: SourceHooks) -> None:
        self._broker = broker
        self._config = config
        self._hooks = hooks
        self._group = config.consumer_group
        self._positions: dict[tuple[str, int], int] = {}
        self._epoch: int | None = None
        self._paused = False
        self.assignment: set[tuple[str, int]] = set()

    def _rebalance_if_due(self) -> None:
        broker = self._broker
        with broker._changed:
            epoch = broker._epoch
            errors, broker._errors = broker._errors, []
        if epoch != self._epoch:
            self._assign(epoch)
        for code_name, text in errors:
            self._hooks.on_error(classify(code_name, text, eventhubs=False, endpoint=_ENDPOINT))

    def _assign(self, epoch: int) -> None:
        broker = self._broker
        if self.assignment:
            self._hooks.on_revoke(sorted(self.assignment))
            self.assignment.clear()
        self._epoch = epoch
        keys = broker._partitions(self._config.topic_pattern, self._config.topics)
        with broker._changed:
            for key in keys:
                committed = broker._committed.get((self._group, *key))
                start = 0 if self._config.start_from == "earliest" else broker._high(*key)
                self._positions[key] = committed if committed is not None else start
            broker.assignments.append({key: self._positions[key] for key in keys})
        self.assignment.update(keys)
        if keys:
            self._hooks.on_assign(keys)

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages from the assigned partitions, waiting ``timeout``."""
        self._rebalance_if_due()
        broker = self._broker
        with broker._changed:
            batch = [] if self._paused else self._take(max_messages)
            if not batch and timeout > 0:
                broker._changed.wait(timeout)
                batch = [] if self._paused else self._take(max_messages)
            if batch:
                broker.polls.append(len(batch))
            lags = [
                PartitionLag(t, p, broker._committed.get((self._group, t, p)), broker._high(t, p))
                for t, p in sorted(self.assignment)
            ]
        self._hooks.on_lag(lags)
        return batch

    def _take(self, max_messages: int) -> list[Message]:
        received = datetime.now(UTC)
        batch: list[Message] = []
        for topic, partition in sorted(self.assignment):
            log = self._broker._topics[topic][partition].values
            position = self._positions[(topic, partition)]
            for offset in range(position, min(len(log), position + max_messages - len(batch))):
                value, enqueued = log[offset]
                batch.append(
                    Message(
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        value=value,
                        received_time=received,
                        enqueued_time=enqueued,
                    )
                )
                self._positions[(topic, partition)] = offset + 1
        return batch

    def commit(self, offsets: dict[tuple[str, int], int], *, wait: bool) -> None:
        """Record the next offsets to read for this reader's group."""
        with self._broker._changed:
            for (topic, partition), offset in sorted(offsets.items()):
                self._broker._committed[(self._group, topic, partition)] = offset
                self._broker.commits.append((self._group, topic, partition, offset))

    def pause(self) -> None:
        """Return no messages until ``resume``."""
        self._paused = True

    def resume(self) -> None:
        """Return messages again."""
        self._paused = False

    def list_topics(self, timeout: float) -> list[str] | None:
        """Every topic of the broker."""
        with self._broker._changed:
            return sorted(self._broker._topics)

    def high_watermark(self, topic: str, partition: int, timeout: float) -> int | None:
        """The length of the partition's log."""
        with self._broker._changed:
            return self._broker._high(topic, partition)

    def close(self) -> None:
        """Revoke the partitions (the reader commits what it stored) and stop."""
        if self.assignment:
            self._hooks.on_revoke(sorted(self.assignment))
            self.assignment.clear()


@dataclass(frozen=True, slots=True)
class MemoryDriver:
    """The transport of a ``MemoryBroker``."""

    broker: MemoryBroker

    def open(self, config: SourceConfig, hooks: SourceHooks) -> MemorySource:
        """A reader of ``config``'s topics in the broker."""
        return MemorySource(self.broker, config, hooks)

    def diagnose(self, config: SourceConfig, code_name: str, text: str) -> Diagnosis:
        """Classified as a Kafka client's error would be."""
        return classify(
            code_name, text, eventhubs=False, endpoint=_ENDPOINT, topics=config.subscription
        )

    def explain(self, config: SourceConfig, problem: Problem, message: str) -> Diagnosis:
        """With a Kafka source's hint."""
        hint = hint_for(problem, eventhubs=False, endpoint=_ENDPOINT, topics=config.subscription)
        return Diagnosis(problem, message, hint)

    def checks(self, config: SourceConfig, timeout: float) -> list[Check]:
        """One step: do the subscribed topics exist?"""

        def topic() -> Step:
            found = self.broker._partitions(config.topic_pattern, config.topics)
            if not found:
                return Step("topic", "failed", "no subscribed topic exists", "create the topic")
            return Step("topic", "ok", f"{len(found)} partitions")

        return [("topic", topic)]
