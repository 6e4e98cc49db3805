"""The collector: one event source's messages, parsed, durably stored, then committed.

Two threads per source. The consumer thread polls, drops what the store already holds, parses
and queues batches; the writer thread stores each batch and hands its offsets back, and the
consumer thread commits them. So an offset is committed only after the store has durably written
everything before it. After a crash the uncommitted messages come again; the offset of the last
message stored per partition (the guard) makes their second write a no-op. A topic re-created
under the same name starts its offsets again: that is detected (see ``_went_back``) and said.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from hubsight.errors import HubsightError, SourceError, StoreError, StoreFullError
from hubsight.health import SourceHealth, State
from hubsight.metrics import SourceMetrics
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import EmptyRegistry, MessageParser
from hubsight.sources.base import Message, Source, SourceDriver, SourceHooks
from hubsight.sources.config import SourceConfig
from hubsight.sources.diagnose import Diagnosis, Problem
from hubsight.store.base import EventStore, Offsets
from hubsight.store.sql import STORED_ENQUEUED_MS

log = logging.getLogger(__name__)

StoredHook = Callable[[Sequence[Event]], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorSettings:
    """How a collector batches and waits; tests shorten the waits."""

    # Each store write makes one fsynced part with its projections; small writes spend their time
    # on that, so messages are gathered up to these limits or for ``linger_s`` after the first one.
    max_batch_messages: int = 1_000
    # The engine holds ~26 KB per event while it parses and sorts an INSERT (10x the record):
    # a backlog of large messages (50 records each) fills batches by bytes, and at 64 MB one
    # write held ~600 MB; at 16 MB (~6,000 events) ~150 MB. Batches of small messages stop at
    # max_batch_messages first.
    max_batch_bytes: int = 16 * 1024 * 1024
    linger_s: float = 0.3
    poll_timeout_s: float = 0.5
    queued_batches: int = 2
    no_data_after_s: float = 60.0
    # After this long without a message, the broker is asked for its topics; no answer within
    # ``stall_timeout_s`` means it stopped answering (a hung or paused broker keeps the
    # connection open, so the client reports nothing until its request timeouts, minutes on).
    stall_after_s: float = 10.0
    stall_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass(slots=True)
class _Batch:
    events: list[Event]
    offsets: Offsets
    payload_bytes: int


@dataclass
class Collector:
    """Reads one source into the store until ``stop`` is set; ``driver`` is its transport."""

    config: SourceConfig
    driver: SourceDriver
    store: EventStore
    health: SourceHealth
    registry: ParserRegistry = field(default_factory=EmptyRegistry)
    settings: CollectorSettings = field(default_factory=CollectorSettings)
    on_stored: StoredHook | None = None
    metrics: SourceMetrics | None = None

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop``; reconnect with capped exponential backoff after failures."""
        parser = MessageParser(
            log_name=self.config.name,
            registry=self.registry,
            default_domain=self.config.default_domain,
            keep_unparsed=self.config.keep_unparsed,
        )
        backoff = self.settings.backoff_initial_s
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._consume(parser, stop)
            except SourceError as exc:
                self.health.error(Diagnosis(Problem.OTHER, exc.message, exc.hint))
            except StoreError as exc:
                # Nothing unstored was committed: the next attempt reads it again.
                retry = (
                    "ingestion resumes by itself when space is freed"
                    if isinstance(exc, StoreFullError)
                    else "the collector retries by itself"
                )
                self.health.error(Diagnosis(Problem.STORE, exc.message, f"{exc.hint}; {retry}"))
            except Exception as exc:
                log.exception("collector %s failed", self.config.name)
                self.health.error(self.driver.diagnose(self.config, type(exc).__name__, str(exc)))
            if time.monotonic() - started > self.settings.backoff_max_s:
                backoff = self.settings.backoff_initial_s
            stop.wait(backoff)
            backoff = min(backoff * 2, self.settings.backoff_max_s)
        self.health.set_state(State.STOPPED)

    def _consume(self, parser: MessageParser, stop: threading.Event) -> None:
        guard = self.store.stored_offsets(self.config.name)
        run = _Run(self, parser, guard)
        hooks = SourceHooks(
            on_error=run.on_error,
            on_assign=run.on_assign,
            on_revoke=run.on_revoke,
            on_lag=self.health.set_lag,
        )
        source = self.driver.open(self.config, hooks)
        run.source = source
        writer = threading.Thread(target=run.write_loop, name=f"writer-{self.config.name}")
        writer.start()
        try:
            run.consume_loop(source, stop)
        finally:
            run.batches.put(None)
            writer.join()
            run.commit_written(wait=True)
            source.close()
        if run.failure is not None:
            raise run.failure


class _Run:
    """The state of one consumer session (between two reconnects)."""

    def __init__(self, collector: Collector, parser: MessageParser, guard: Offsets) -> None:
        self.collector = collector
        self.config = collector.config
        self.health = collector.health
        self.parser = parser
        self.guard = guard
        self.source: Source | None = None
        self.batches: queue.Queue[_Batch | None] = queue.Queue(collector.settings.queued_batches)
        self.written: queue.Queue[Offsets] = queue.Queue()
        self.failure: HubsightError | None = None
        self.writer_failed = threading.Event()
        self.assigned_at: float | None = None
        self.unassigned_since = time.monotonic()
        self.last_data: float | None = None
        # When the broker last showed it answers: a message, or topics when asked.
        self.last_heard = time.monotonic()
        self.topic_check_due = False
        self.pending: list[Message] = []
        self.pending_bytes = 0
        self.pending_since = 0.0
        # The mean size of the last poll's messages (bytes), which bounds the next poll.
        self.message_bytes: int | None = None
        # The last offset read per partition in this assignment (a rebalance starts it over).
        self.seen: dict[tuple[str, int], int] = {}

    # -- callbacks from the consumer (run on the consumer thread, inside poll) --
    def on_error(self, diagnosis: Diagnosis) -> None:
        self.health.error(diagnosis)
        if diagnosis.problem is Problem.TOPIC_NOT_FOUND:
            self.topic_check_due = True

    def on_assign(self, partitions: list[tuple[str, int]]) -> None:
        for key in partitions:
            self.seen.pop(key, None)
        self.assigned_at = time.monotonic()
        self.health.connected(waiting=self.last_data is None)

    def on_revoke(self, partitions: list[tuple[str, int]]) -> None:
        # Whatever was read from these partitions is stored and committed before they move.
        if not self.writer_failed.is_set():
            self.flush_pending()
        self.batches.join()
        self.commit_written(wait=True)
        if self.source is not None and len(self.source.assignment) <= len(partitions):
            self.assigned_at = None
            self.unassigned_since = time.monotonic()

    # -- the consumer thread --
    def consume_loop(self, source: Source, stop: threading.Event) -> None:
        settings = self.collector.settings
        while not stop.is_set() and not self.writer_failed.is_set():
            self.commit_written(wait=False)
            if self.batches.full():
                # The store is behind: stop fetching rather than buffer without bound.
                source.pause()
                time.sleep(0.05)
                continue
            source.resume()
            now = time.monotonic()
            timeout = settings.poll_timeout_s
            if self.pending:
                timeout = max(0.0, min(timeout, self.pending_since + settings.linger_s - now))
            messages = source.poll_batch(self._room(), timeout)
            if messages:
                self.last_heard = time.monotonic()
                if not self.pending:
                    self.pending_since = now
                self.pending.extend(messages)
                polled = sum(len(m.value) for m in messages)
                self.pending_bytes += polled
                self.message_bytes = max(1, polled // len(messages))
            if self.pending and (
                not messages
                or len(self.pending) >= settings.max_batch_messages
                # Full, or the next message would not fit: the batch is as full as it gets.
                or self.pending_bytes + (self.message_bytes or 1) > settings.max_batch_bytes
                or time.monotonic() - self.pending_since >= settings.linger_s
            ):
                self.flush_pending()
            self._watch_idle(source)
        if not self.writer_failed.is_set():
            self.flush_pending()

    def _room(self) -> int:
        """How many messages the next poll may bring: what fits in the batch being gathered.

        In a backlog one poll hands over all the client fetched ahead, up to
        ``max_batch_messages``: 1,000 messages of 100 KB held 100 MB here besides the queued
        batches. So a poll asks for what fits in ``max_batch_bytes`` at the size of the last
        poll's messages (one message before any was seen).
        """
        settings = self.collector.settings
        room = settings.max_batch_messages - len(self.pending)
        if self.message_bytes is None:
            return min(room, 1)
        fits = (settings.max_batch_bytes - self.pending_bytes) // self.message_bytes
        return max(1, min(room, fits))

    def flush_pending(self) -> None:
        # A poll may still bring more than a batch's bytes (messages larger than the last
        # poll's): cut at the limit, so no write parses and holds more.
        for batch in _by_bytes(self.pending, self.collector.settings.max_batch_bytes):
            self._enqueue(batch)
        self.pending = []
        self.pending_bytes = 0

    def _enqueue(self, messages: list[Message]) -> None:
        self.last_data = time.monotonic()
        fresh: list[Message] = []
        offsets: Offsets = {}
        for message in messages:
            key = (message.topic, message.partition)
            guard = self.guard.get(key, -1)
            if message.offset <= guard and self._went_back(message, guard):
                guard = message.offset - 1
            if message.offset > guard:
                fresh.append(message)
                self.guard[key] = message.offset
            self.seen[key] = message.offset
            # A partition's messages come in order: its last one here is where it goes on.
            offsets[key] = message.offset + 1
        events = [event for message in fresh for event in self.parser.parse(message)]
        if self.collector.metrics is not None:
            self.collector.metrics.consumed(messages, events)
        payload = sum(len(m.value) for m in fresh)
        self.batches.put(_Batch(events, offsets, payload))
        self.health.set_parse_counters(self.parser.counters)

    def _went_back(self, message: Message, guard: int) -> bool:
        """Whether a message at or below the guard starts a new log rather than coming again.

        Messages come again from the committed offset after a reconnect, and the guard skips
        them. But a topic deleted and created again (an Event Hub re-created under the same
        name, a broker that lost its data) numbers its messages from 0 again: reading on from
        this session's last offset says so; so does a first message enqueued at another time
        than the message last stored at its offset (also when the new log is already longer
        than the old one), or, when times are unknown, a log that ends before the last stored
        offset.
        """
        key, offset = (message.topic, message.partition), message.offset
        last = self.seen.get(key)
        if last is not None:
            went_back = offset <= last
        elif (same := self._same_as_stored(message)) is not None:
            went_back = not same
        else:
            high = self.source.high_watermark(*key, timeout=5.0) if self.source else None
            went_back = high is not None and high <= guard
        if went_back:
            topic, partition = key
            self.health.notice(
                f"offsets of partition {partition} of {topic} went back from {guard:,} to "
                f"{offset:,}: the topic was re-created; reading it from the start"
            )
        return went_back

    def _same_as_stored(self, message: Message) -> bool | None:
        """Whether the message last stored at this message's position was enqueued at the same
        time; None when a time is unknown or nothing is stored there."""
        if message.enqueued_time is None:
            return None
        rows = self.collector.store.select(
            STORED_ENQUEUED_MS,
            {
                "log_name": self.config.name,
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
            },
        )
        if not rows:
            return None
        return int(rows[0]["ms"]) == round(message.enqueued_time.timestamp() * 1000)

    def _watch_idle(self, source: Source) -> None:
        now = time.monotonic()
        after = self.collector.settings.no_data_after_s
        if self.topic_check_due:
            self.topic_check_due = False
            self._report_missing_topics(source)
        elif self.assigned_at is None and now - self.unassigned_since > after:
            self.unassigned_since = now
            if self.health.state is not State.ERROR:
                self._report_missing_topics(source)
        elif (
            self.assigned_at is not None
            and self.last_data is None
            and now - self.assigned_at > after
            and self.health.state is not State.ERROR
        ):
            self.health.waiting(
                self.collector.driver.explain(
                    self.config, Problem.NO_DATA, "connected, no events have arrived yet"
                )
            )
        if time.monotonic() - self.last_heard > self.collector.settings.stall_after_s:
            self._ask_topics(source)

    def _ask_topics(self, source: Source) -> list[str] | None:
        """The broker's topics, noting whether it answered: a stall is said, and its end."""
        visible = source.list_topics(timeout=self.collector.settings.stall_timeout_s)
        if visible is None:
            silent = time.monotonic() - self.last_heard
            self.health.stalled(
                self.collector.driver.explain(
                    self.config,
                    Problem.STALLED,
                    f"the broker has not answered for {silent:,.0f} s",
                )
            )
        else:
            self.last_heard = time.monotonic()
            self.health.answering(waiting=self.last_data is None)
        return visible

    def _report_missing_topics(self, source: Source) -> None:
        visible = self._ask_topics(source)
        if visible is None:
            return
        wanted = self.config.subscription
        if self.config.topic_pattern:
            matched = [t for t in visible if re.match(self.config.topic_pattern, t)]
            if matched:
                return
            message = f"no topic matches {self.config.topic_pattern!r}"
        else:
            missing = [t for t in wanted if t not in visible]
            if not missing:
                return
            message = f"topic {', '.join(missing)} not found"
        seen = ", ".join(visible[:20]) or "none"
        self.health.error(
            self.collector.driver.explain(
                self.config,
                Problem.TOPIC_NOT_FOUND,
                f"{message}; topics this credential can see: {seen}",
            )
        )

    def commit_written(self, *, wait: bool) -> None:
        offsets: Offsets = {}
        while True:
            try:
                done = self.written.get_nowait()
            except queue.Empty:
                break
            # Later batches win: after a topic is re-created its offsets are lower.
            offsets.update(done)
        if offsets and self.source is not None:
            self.source.commit(offsets, wait=wait)

    # -- the writer thread --
    def write_loop(self) -> None:
        while True:
            batch = self.batches.get()
            try:
                if batch is None:
                    return
                if not self.writer_failed.is_set():
                    self._write(batch)
            finally:
                self.batches.task_done()

    def _write(self, batch: _Batch) -> None:
        started = time.perf_counter()
        try:
            self.collector.store.write(batch.events)
        except StoreError as exc:
            # Nothing is committed for this batch: the consumer reconnects and reads it again.
            self.failure = exc
            self.writer_failed.set()
            return
        self.written.put(batch.offsets)
        metrics = self.collector.metrics
        if metrics is not None:
            metrics.stored(batch.events, time.perf_counter() - started)
        last = max((e.timestamp for e in batch.events), default=None)
        self.health.stored(len(batch.events), batch.payload_bytes, last)
        if self.collector.on_stored is not None and batch.events:
            started = time.perf_counter()
            try:
                self.collector.on_stored(batch.events)
            except Exception:
                # Stored and committed all the same: detection reads them again from the store.
                log.exception("processing stored events of %s failed", self.config.name)
            if metrics is not None:
                metrics.detected(time.perf_counter() - started)


def _by_bytes(messages: list[Message], max_bytes: int) -> Iterator[list[Message]]:
    """``messages`` in order, cut into batches of at most ``max_bytes`` (a larger message alone)."""
    batch: list[Message] = []
    size = 0
    for message in messages:
        if batch and size + len(message.value) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += len(message.value)
    if batch:
        yield batch
