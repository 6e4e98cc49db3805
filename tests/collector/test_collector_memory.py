"""The collector's exactly-once logic on the in-memory broker (no Kafka; a real embedded store).

What a real broker adds (consumer groups across processes, SIGKILL) is tested in
``test_exactly_once.py`` and ``test_processes.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubsight.collector import Collector, CollectorSettings
from hubsight.errors import StoreError
from hubsight.health import SourceHealth
from hubsight.parsing.event import Event
from hubsight.sources.config import SourceConfig, make_source
from hubsight.sources.memory import MemoryBroker
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.base import EventStore

from tests.support import PassingStore, wait_until

FAST = CollectorSettings(
    poll_timeout_s=0.05, linger_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    opened = open_store(StoreSettings(data_dir=tmp_path_factory.mktemp("memory-collector")))
    yield opened
    opened.close()


class WrappedStore(PassingStore):
    """The real store with ``before_write(n)`` called before the n-th write (it may raise);
    ``sizes`` are the writes' event counts."""

    def __init__(self, inner: EventStore, before_write: Callable[[int], None]) -> None:
        super().__init__(inner)
        self.before_write = before_write
        self.writes = 0
        self.sizes: list[int] = []

    def write(self, events: Sequence[Event]) -> None:
        self.writes += 1
        self.before_write(self.writes)
        self.sizes.append(len(events))
        self.inner.write(events)

    def close(self) -> None:
        """The module's store is closed by its fixture."""


def _source(name: str, topic: str, **extra: Any) -> SourceConfig:
    return make_source(
        {
            "name": name,
            "profile": {"kind": "kafka", "bootstrap": "memory:9092"},
            "topics": [topic],
            "keep_unparsed": True,
            **extra,
        }
    )


def _fill(broker: MemoryBroker, topic: str, messages: int, partitions: int) -> None:
    broker.create_topic(topic, partitions)
    for m in range(messages):
        records = [{"category": "SignInLogs", "seq": m * 2 + i} for i in range(2)]
        broker.produce(topic, json.dumps({"records": records}).encode(), partition=m % partitions)


@contextmanager
def collecting(
    config: SourceConfig,
    broker: MemoryBroker,
    store: EventStore,
    settings: CollectorSettings = FAST,
) -> Iterator[SourceHealth]:
    health = SourceHealth(config.name)
    collector = Collector(config, broker.driver(), store, health, settings=settings)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    try:
        yield health
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def _stored(store: EventStore, name: str) -> dict[str, Any]:
    (row,) = store.select(
        "SELECT count() AS n, uniqExact(JSONExtractInt(raw, 'seq')) AS seqs, "
        "uniqExact(source_partition, source_offset, record_index) AS positions "
        "FROM events WHERE log_name = {n:String}",
        {"n": name},
    )
    return row


def _all_committed(broker: MemoryBroker, topic: str, partitions: int, per: int) -> bool:
    return all(broker.committed(topic, p) == per for p in range(partitions))


def test_every_message_is_stored_once_and_committed(store: EventStore) -> None:
    broker = MemoryBroker()
    _fill(broker, "t-once", 300, 3)
    with collecting(_source("once", "t-once"), broker, store):
        wait_until(lambda: _all_committed(broker, "t-once", 3, 100), 30, "every offset committed")
    assert _stored(store, "once") == {"n": 600, "seqs": 600, "positions": 600}


def test_a_backlog_is_polled_and_written_in_batches_of_at_most_max_batch_bytes(
    store: EventStore,
) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-bytes")
    bodies = [
        json.dumps({"records": [{"category": "SignInLogs", "seq": m, "pad": "x" * 5_000}]})
        for m in range(30)
    ]
    for body in bodies:
        broker.produce("t-bytes", body.encode())
    recording = WrappedStore(store, lambda _number: None)
    # Three messages fit, a fourth does not; the whole backlog is there to be polled at once.
    limit = 3 * len(bodies[0]) + len(bodies[0]) // 2
    settings = CollectorSettings(
        max_batch_bytes=limit, poll_timeout_s=0.05, linger_s=0.05, backoff_initial_s=0.05
    )
    with collecting(_source("bytes", "t-bytes"), broker, recording, settings):
        wait_until(lambda: _all_committed(broker, "t-bytes", 1, 30), 30, "every offset committed")
    assert recording.sizes == [3] * 10
    # Nothing more is held than the batch being gathered: the first poll takes one message
    # (no size known yet), the others what fits beside what is pending.
    assert sum(broker.polls) == 30
    assert max(broker.polls) <= 3
    assert _stored(store, "bytes") == {"n": 30, "seqs": 30, "positions": 30}


def test_a_failed_write_commits_nothing_and_its_batch_is_read_again(store: EventStore) -> None:
    broker = MemoryBroker()
    _fill(broker, "t-flaky", 40, 1)
    committed_at_failure: list[int] = []

    def fail_second(number: int) -> None:
        if number == 2:
            committed_at_failure.append(broker.committed("t-flaky", 0) or 0)
            raise StoreError("disk full (injected)")

    settings = CollectorSettings(
        max_batch_messages=10, poll_timeout_s=0.05, linger_s=0.05, backoff_initial_s=0.05
    )
    flaky = WrappedStore(store, fail_second)
    with collecting(_source("flaky", "t-flaky"), broker, flaky, settings) as health:
        wait_until(lambda: _all_committed(broker, "t-flaky", 1, 40), 30, "every offset committed")
        assert health.snapshot()["last_error"] == "disk full (injected)"
    # When the second write failed, at most the first batch (10 messages) was committed, and
    # no commit ever passed what was stored.
    assert committed_at_failure[0] <= 10
    assert _stored(store, "flaky") == {"n": 80, "seqs": 80, "positions": 80}
    # The reader started again from the last commit: offset 10, not 0 and not 20.
    assert broker.assignments[1] == {("t-flaky", 0): 10}


def test_what_was_stored_but_not_committed_is_not_stored_twice(store: EventStore) -> None:
    broker = MemoryBroker()
    _fill(broker, "t-crash", 50, 2)
    config = _source("crash", "t-crash")
    with collecting(config, broker, store):
        wait_until(lambda: _all_committed(broker, "t-crash", 2, 25), 30, "first pass committed")
    # As after a crash between the store write and the commit: all of it comes again.
    broker.forget_commits()
    _fill(broker, "t-crash", 10, 2)  # and ten new messages (offsets 25..29 of each partition)
    with collecting(config, broker, store):
        wait_until(lambda: _all_committed(broker, "t-crash", 2, 30), 30, "second pass committed")
    assert _stored(store, "crash")["n"] == 120
    assert _stored(store, "crash")["positions"] == 120


def test_a_rebalance_stores_and_commits_what_was_read_before_partitions_move(
    store: EventStore,
) -> None:
    broker = MemoryBroker()
    _fill(broker, "t-move", 8, 2)
    writing, release = threading.Event(), threading.Event()

    def hold_first(number: int) -> None:
        if number == 1:
            writing.set()
            release.wait(10)

    held = WrappedStore(store, hold_first)
    with collecting(_source("move", "t-move"), broker, held):
        assert writing.wait(10)
        broker.rebalance()
        # The write finishes only after the revocation has begun: the revocation must wait
        # for it and commit, so the partitions move at offset 4, not at 0.
        threading.Timer(0.3, release.set).start()
        wait_until(lambda: len(broker.assignments) == 2, 10, "the partitions assigned again")
    assert broker.assignments == [
        {("t-move", 0): 0, ("t-move", 1): 0},
        {("t-move", 0): 4, ("t-move", 1): 4},
    ]
    assert _stored(store, "move")["n"] == 16


def test_a_client_error_shows_in_health_with_its_hint_and_progress_clears_it(
    store: EventStore,
) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-err")
    broker.report_error("_TRANSPORT", "connect to memory:9092 failed: Connection refused")
    with collecting(_source("err", "t-err"), broker, store) as health:
        wait_until(lambda: health.snapshot()["state"] == "error", 10, "the error shown")
        snapshot = health.snapshot()
        assert snapshot["problem"] == "unreachable"
        assert "memory" in snapshot["hint"]
        broker.produce("t-err", b'{"records": [{"category": "SignInLogs"}]}')
        wait_until(lambda: health.snapshot()["state"] == "running", 10, "running again")


def test_connected_without_data_says_why(store: EventStore) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-quiet")
    settings = CollectorSettings(poll_timeout_s=0.05, no_data_after_s=0.3)
    with collecting(_source("quiet", "t-quiet"), broker, store, settings) as health:
        wait_until(lambda: health.snapshot()["problem"] == "no_data", 10, "no data explained")
        assert health.snapshot()["state"] == "waiting for data"
        assert "nothing arrives on t-quiet" in health.snapshot()["hint"]


def test_a_missing_topic_is_named_with_the_topics_that_exist(store: EventStore) -> None:
    broker = MemoryBroker()
    broker.create_topic("insights-logs-signinlogs")
    settings = CollectorSettings(poll_timeout_s=0.05, no_data_after_s=0.3)
    with collecting(_source("missing", "t-none"), broker, store, settings) as health:
        wait_until(lambda: health.snapshot()["state"] == "error", 10, "the missing topic")
        snapshot = health.snapshot()
        assert snapshot["problem"] == "topic_not_found"
        assert "topic t-none not found" in snapshot["last_error"]
        assert "insights-logs-signinlogs" in snapshot["last_error"]


def _produce_seqs(broker: MemoryBroker, topic: str, seqs: range, partitions: int = 2) -> None:
    for seq in seqs:
        body = json.dumps({"records": [{"category": "SignInLogs", "seq": seq}]}).encode()
        # Enqueued a second apart, as a broker stamps them: a message's time is its own.
        enqueued = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(seconds=seq, milliseconds=7)
        broker.produce(topic, body, partition=seq % partitions, enqueued=enqueued)


def _notices(health: SourceHealth) -> list[str]:
    return [n["message"] for n in health.snapshot()["notices"]]


def test_a_topic_re_created_while_stopped_is_read_from_the_start_and_said(
    store: EventStore,
) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-again", 2)
    _produce_seqs(broker, "t-again", range(40))
    config = _source("again", "t-again")
    with collecting(config, broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-again", 2, 20), 30, "first topic read")
    assert _notices(health) == []
    # Deleted and created again: offsets start at 0, below the 19 stored per partition.
    broker.recreate("t-again")
    _produce_seqs(broker, "t-again", range(100, 110))
    with collecting(config, broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-again", 2, 5), 30, "new topic read")
        assert sorted(_notices(health)) == [
            f"offsets of partition {p} of t-again went back from 19 to 0: the topic was "
            "re-created; reading it from the start"
            for p in (0, 1)
        ]
    assert _stored(store, "again")["seqs"] == 50
    # After a restart the guard follows the new topic's offsets, not the old topic's higher ones.
    _produce_seqs(broker, "t-again", range(110, 114))
    with collecting(config, broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-again", 2, 7), 30, "more of the new topic")
    assert _notices(health) == []
    # 54 messages stored once; the new topic's positions (0..6 per partition) repeat the old's.
    assert _stored(store, "again") == {"n": 54, "seqs": 54, "positions": 40}


def test_a_topic_re_created_while_running_is_read_from_the_start(store: EventStore) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-live", 1)
    _produce_seqs(broker, "t-live", range(30), partitions=1)
    with collecting(_source("live", "t-live"), broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-live", 1, 30), 30, "first topic read")
        broker.recreate("t-live")
        _produce_seqs(broker, "t-live", range(200, 203), partitions=1)
        wait_until(lambda: _all_committed(broker, "t-live", 1, 3), 30, "new topic read")
        assert _notices(health) == [
            "offsets of partition 0 of t-live went back from 29 to 0: the topic was "
            "re-created; reading it from the start"
        ]
    assert _stored(store, "live")["seqs"] == 33


def test_a_topic_re_created_longer_than_before_is_told_by_its_enqueue_times(
    store: EventStore,
) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-longer", 1)
    _produce_seqs(broker, "t-longer", range(20), partitions=1)
    config = _source("longer", "t-longer")
    with collecting(config, broker, store):
        wait_until(lambda: _all_committed(broker, "t-longer", 1, 20), 30, "first topic read")
    # Re-created with more messages than the old log had: its end is past the last stored offset,
    # but the message at offset 0 was enqueued at another time than the one stored there.
    broker.recreate("t-longer")
    _produce_seqs(broker, "t-longer", range(100, 130), partitions=1)
    with collecting(config, broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-longer", 1, 30), 30, "new topic read")
        assert _notices(health) == [
            "offsets of partition 0 of t-longer went back from 19 to 0: the topic was "
            "re-created; reading it from the start"
        ]
    assert _stored(store, "longer") == {"n": 50, "seqs": 50, "positions": 30}


def test_messages_read_again_after_lost_commits_are_no_reset(store: EventStore) -> None:
    broker = MemoryBroker()
    broker.create_topic("t-lost", 1)
    _produce_seqs(broker, "t-lost", range(20), partitions=1)
    config = _source("lost", "t-lost")
    with collecting(config, broker, store):
        wait_until(lambda: _all_committed(broker, "t-lost", 1, 20), 30, "first pass")
    broker.forget_commits()
    # The log still holds offset 19 (its high watermark is 21): offset 0 comes again, no reset.
    _produce_seqs(broker, "t-lost", range(20, 21), partitions=1)
    with collecting(config, broker, store) as health:
        wait_until(lambda: _all_committed(broker, "t-lost", 1, 21), 30, "second pass")
    assert _notices(health) == []
    assert _stored(store, "lost") == {"n": 21, "seqs": 21, "positions": 21}
