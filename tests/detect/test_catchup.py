"""Detection catches up: what was stored and not processed (a batch it failed on, a crash
before its save) is read back from the event store and detected once, never twice."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from hubsight.cli.main import cli
from hubsight.detect import notify
from hubsight.detect.alerts import Alert, AlertFilter
from hubsight.detect.base import (
    EventKind,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.detect.catchup import catch_up, count_beyond, stored_beyond
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Notifier
from hubsight.detect.rules.auth_volume import BruteForce, BruteForceSuccess
from hubsight.detect.rules.signals import AUTH_LOG_SETS, signin
from hubsight.detect.runtime import Detection
from hubsight.detect.targets import WebhookConfig
from hubsight.errors import StoreError
from hubsight.health import DetectionLag, SourceHealth
from hubsight.parsing.event import Event
from hubsight.service import Service, run_lock
from hubsight.store.base import EventStore
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore

from tests.detect.receivers import http_receiver
from tests.support import PassingStore, kafka_source

_FAILED = "FAILED_BAD_PASSWORD"
_names = (f"log-{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    # One engine for the file; each test writes under log names of its own.
    store = EmbeddedStore(tmp_path_factory.mktemp("store"))
    yield store
    store.close()


class _Breaks(Rule[RuleConfig]):
    """A rule with a bug the engine does not catch: asked about failed sign-ins, it raises."""

    meta = RuleMeta(
        id="test.breaks",
        title="Breaks",
        description="Raises while ``broken``.",
        severity=Severity.LOW,
        technique="T1110",
        log_sets=AUTH_LOG_SETS,
        runbook="none",
    )
    broken = True

    def reads(self, kind: EventKind) -> bool:
        if self.broken and kind.result == _FAILED:
            raise RuntimeError("a bug in the engine")
        return False

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        return ()

    @classmethod
    def examples(cls) -> Sequence[Example]:
        return ()


class _Flaky(PassingStore):
    """The real store, whose queries fail while ``failures`` lasts (a store not answering), and
    whose reads of events (not counts) fail while ``fail_reads`` is set."""

    def __init__(self, store: EventStore, failures: int, *, fail_reads: bool = False) -> None:
        super().__init__(store)
        self.failures = failures
        self.fail_reads = fail_reads
        self.message = "the event store did not answer: timeout"
        self.reads = 0

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.reads += 1
        if self.failures > 0 or (self.fail_reads and "count()" not in sql):
            self.failures = max(self.failures - 1, 0)
            raise StoreError(self.message)
        return self.inner.select(sql, params)


class _Batches:
    """Sign-ins of one log as a collector hands them over: distinct offsets, received now."""

    def __init__(self, log_name: str, partitions: int = 1) -> None:
        self.log_name = log_name
        self.offsets = [0] * partitions
        self.minute = 0

    def batch(
        self,
        results: Iterable[str],
        user: str,
        partition: int = 0,
        received: datetime | None = None,
    ) -> list[Event]:
        # Microseconds, as the collector's clock gives them: the store keeps milliseconds.
        received = received or datetime.now(UTC)
        events = []
        for result in results:
            event = signin(self.minute, user, result=result, received_time=received)
            event.log_name = self.log_name
            event.source_partition = partition
            event.source_offset = self.offsets[partition]
            self.offsets[partition] += 1
            self.minute += 1
            events.append(event)
        return events


def _detection(
    data_dir: Path, store: EventStore, log_name: str, rules: list[Rule[Any]] | None = None
) -> Detection:
    db = DetectDB.in_dir(data_dir)
    engine = DetectionEngine(
        db,
        rules
        if rules is not None
        else [
            BruteForce(BruteForce.config_type()),
            BruteForceSuccess(BruteForceSuccess.config_type()),
        ],
        options=EngineOptions(learning=timedelta(0)),
    )
    return Detection(engine, Notifier.for_targets([], db), store=store, sources=lambda: [log_name])


def _stored_alerts(detection: Detection) -> list[Alert]:
    return detection.engine.alerts.find(AlertFilter(limit=1000))


def _new(alerts: list[Alert]) -> list[str]:
    return sorted(a.rule_id for a in alerts if a.revision == 1)


def test_a_batch_detection_failed_on_is_detected_before_the_next(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    breaks = _Breaks(RuleConfig())
    detection = _detection(
        tmp_path, store, log_name, [BruteForce(BruteForce.config_type()), breaks]
    )
    feed = _Batches(log_name)
    try:
        detection.on_stored([])  # the catch-up at start: nothing stored yet
        first = feed.batch(["SUCCESS"], "bob@contoso.com")
        store.write(first)
        assert detection.on_stored(first) == []
        attack = feed.batch([_FAILED] * 10, "alice@contoso.com")
        store.write(attack)
        with pytest.raises(RuntimeError, match="a bug in the engine"):
            detection.on_stored(attack)
        assert detection.behind
        breaks.broken = False
        quiet = feed.batch(["SUCCESS"], "carol@contoso.com")
        store.write(quiet)
        # The failed batch is read from the store first, and its alert returned (notified).
        assert _new(detection.on_stored(quiet)) == ["auth.brute_force"]
        assert not detection.behind
        assert detection.last_catch_up is not None
        # From the first batch's millisecond on: the first again, the attack, the live one.
        assert detection.last_catch_up.read == {log_name: 12}
        assert [a.user for a in _stored_alerts(detection)] == ["alice@contoso.com"]
        # The first batch was processed before, the live one read with the rest: each once.
        assert detection.last_catch_up.skipped == 1
        assert detection.repeated == 1
    finally:
        detection.close()


def test_a_failed_catch_up_holds_live_batches_and_is_reported_once(
    store: EmbeddedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_name = next(_names)
    breaks = _Breaks(RuleConfig())
    flaky = _Flaky(store, failures=0)
    detection = _detection(
        tmp_path, flaky, log_name, [BruteForce(BruteForce.config_type()), breaks]
    )
    feed = _Batches(log_name)
    try:
        detection.on_stored([])
        nine = feed.batch([_FAILED] * 9, "alice@contoso.com")
        store.write(nine)
        with pytest.raises(RuntimeError):
            detection.on_stored(nine)
        breaks.broken = False
        flaky.failures = 3
        caplog.clear()
        caplog.set_level(logging.INFO, "hubsight")
        waiting = []
        for result in (_FAILED, "SUCCESS", "SUCCESS"):
            # Each waits in the store: not processed live, not an error of its own.
            batch = feed.batch([result], "alice@contoso.com")
            store.write(batch)
            assert detection.on_stored(batch) == []
            waiting += batch
        assert detection.behind
        assert detection.engine.positions() == {}
        # The same problem, met by every batch that waited: one line, one traceback.
        (reported,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert reported.exc_info is not None
        assert reported.getMessage().startswith(
            "detection is behind: it cannot read back the stored events it has not processed: "
            "the event store did not answer: timeout. check that the event store answers"
        )
        assert "tries again before each batch and every minute" in reported.getMessage()
        # As the sources' health shows it meanwhile.
        assert detection.lag([log_name]) == {
            log_name: DetectionLag(None, "the event store did not answer: timeout")
        }
        last = feed.batch(["SUCCESS"], "carol@contoso.com")
        store.write(last)
        assert _new(detection.on_stored(last)) == ["auth.brute_force"]
        assert detection.last_catch_up is not None
        assert detection.last_catch_up.read == {log_name: 13}
        assert "; 3 attempts had failed" in caplog.text
        assert len(_stored_alerts(detection)) == 1
        assert detection.engine.positions() == {(log_name, "example", 0): (_ms(last[0]), 12, 0)}
        assert detection.lag([log_name]) == {}
    finally:
        detection.close()


def test_a_new_problem_is_reported_in_one_line_without_another_traceback(
    store: EmbeddedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_name = next(_names)
    flaky = _Flaky(store, failures=1)
    detection = _detection(tmp_path, flaky, log_name)
    try:
        caplog.clear()
        assert detection.on_stored([]) == []
        flaky.failures, flaky.message = 1, "the event store refused the query: memory limit"
        assert detection.on_stored([]) == []
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert ["did not answer" in r.getMessage() for r in errors] == [True, False]
        assert "memory limit" in errors[1].getMessage()
        assert [r.exc_info is not None for r in errors] == [True, False]
        assert detection.on_stored([]) == []
        assert not detection.behind
    finally:
        detection.close()


def test_the_sources_health_says_how_far_detection_is_behind(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    data_dir = tmp_path / "data"
    Catalog(data_dir).add(kafka_source(log_name, "127.0.0.1:9", "t"))
    # Counting what waits answers; reading it back does not.
    flaky = _Flaky(store, failures=0, fail_reads=True)
    detection = _detection(tmp_path, flaky, log_name)
    feed = _Batches(log_name)
    store.write(feed.batch([_FAILED] * 7, "alice@contoso.com"))
    service = Service(data_dir, flaky, Catalog(data_dir), detection_lag=detection.lag)
    service.health[log_name] = SourceHealth(log_name)
    try:
        service.persist_health()
        assert _status(data_dir) == f"{log_name}: detection catching up"
        detection.on_stored([])
        service.persist_health()
        assert service.health[log_name].snapshot()["detection"] == {
            "events_behind": 7,
            "problem": "the event store did not answer: timeout",
            "message": "detection behind: at least 7 events behind; it cannot read them back "
            "from the event store (the event store did not answer: timeout) and tries again "
            "every minute; nothing stored is lost",
        }
        assert _status(data_dir).startswith(
            f"{log_name}: detection behind: at least 7 events behind; "
        )
        # As last seen by a run that stopped: nothing detects, the next start catches up.
        assert _status(data_dir, running=False) == ""
        flaky.fail_reads = False
        detection.on_stored([])
        assert not detection.behind
        service.persist_health()
        assert service.health[log_name].snapshot()["detection"] is None
        assert _status(data_dir) == ""
    finally:
        detection.close()


class _Paused(PassingStore):
    """The real store, whose first read of events waits until ``go`` is set, having set
    ``reading``: a catch-up held between counting what waits and reading it."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.reading = threading.Event()
        self.go = threading.Event()

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if "count()" not in sql and not self.reading.is_set():
            self.reading.set()
            assert self.go.wait(60)
        return self.inner.select(sql, params)


def test_what_waits_is_a_lower_bound_while_batches_are_stored_during_a_catch_up(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    paused = _Paused(store)
    detection = _detection(tmp_path, paused, log_name)
    feed = _Batches(log_name)
    try:
        paused.reading.set()
        detection.on_stored([])
        paused.reading.clear()
        # Stored and not processed (the process died before detection saved it).
        store.write(feed.batch([_FAILED] * 9, "alice@contoso.com"))
        detection.behind = True
        thread = detection.start_catch_up()
        assert thread is not None
        assert paused.reading.wait(60)
        assert detection.lag([log_name]) == {log_name: DetectionLag(9)}
        # A collector stores its next batch and waits for the catch-up to hand it over: the
        # count does not know of it, so it says "at least".
        store.write(feed.batch([_FAILED] * 3, "bob@contoso.com"))
        (lag,) = detection.lag([log_name]).values()
        assert lag.message() == "detection catching up: at least 9 events behind"
        paused.go.set()
        thread.join(60)
        assert detection.last_catch_up is not None
        # Both batches read: twelve, of which the count knew nine.
        assert detection.last_catch_up.read == {log_name: 12}
        assert detection.lag([log_name]) == {}
    finally:
        paused.go.set()
        detection.close()


def _status(data_dir: Path, *, running: bool = True) -> str:
    """What ``hubsight status`` says of detection (the lines naming it), while ``hubsight run``
    holds ``data_dir`` (this process, as it) or not."""
    with run_lock(data_dir) if running else contextlib.nullcontext():
        done = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "status"])
    assert done.exit_code == 0, done.output
    return "\n".join(line for line in done.output.splitlines() if "detection" in line)


def test_a_restart_detects_what_was_stored_and_not_saved_once(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    feed = _Batches(log_name)
    before = _detection(tmp_path, store, log_name)
    nine = feed.batch([_FAILED] * 9, "alice@contoso.com")
    store.write(nine)
    assert before.on_stored(nine) == []
    # Stored, then the process died before detection saved it.
    tenth = feed.batch([_FAILED, "SUCCESS"], "alice@contoso.com")
    store.write(tenth)
    before.engine.db.close()

    after = _detection(tmp_path, store, log_name)
    try:
        thread = after.start_catch_up()
        assert thread is not None
        thread.join(60)
        assert not after.behind
        # The nine are read again with the tenth (from the millisecond of the last one
        # processed) but counted once: ten failures, not nineteen.
        assert after.last_catch_up is not None
        assert after.last_catch_up.skipped == 9
        assert _new(_stored_alerts(after)) == ["auth.brute_force", "auth.brute_force_success"]
        (brute,) = [a for a in _stored_alerts(after) if a.rule_id == "auth.brute_force"]
        assert len(brute.evidence) == 10
        # Handed over after the catch-up read them (a batch stored while it ran): nothing new.
        assert after.on_stored(nine + tenth) == []
        assert after.repeated == 11
    finally:
        after.close()


def test_with_no_source_there_is_nothing_to_read_back(
    store: EmbeddedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_name = next(_names)
    before = _detection(tmp_path, store, log_name)
    nine = _Batches(log_name).batch([_FAILED] * 9, "alice@contoso.com")
    store.write(nine)
    before.on_stored(nine)
    before.close()
    # Its only source removed: the catch-up has nothing to read, and said "reading the events
    # of  it has not processed" with no name.
    db = DetectDB.in_dir(tmp_path)
    engine = DetectionEngine(db, [], options=EngineOptions(learning=timedelta(0)))
    after = Detection(engine, Notifier.for_targets([], db), store=store, sources=lambda: [])
    try:
        with caplog.at_level("INFO", logger="hubsight.detect.runtime"):
            thread = after.start_catch_up()
            assert thread is not None
            thread.join(60)
        assert not after.behind
        assert "reading the events of" not in caplog.text
    finally:
        after.close()


def test_reading_again_what_was_processed_counts_nothing_twice(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    feed = _Batches(log_name)
    detection = _detection(tmp_path, store, log_name)
    try:
        detection.on_stored([])
        # Nine failures, one short of the threshold, over two partitions in one millisecond.
        batch = feed.batch([_FAILED] * 5, "alice@contoso.com")
        other = _Batches(log_name, partitions=2)
        other.minute = 5
        second = other.batch([_FAILED] * 4, "alice@contoso.com", partition=1)
        for event in second:
            event.received_time = batch[0].received_time
        store.write(batch + second)
        assert detection.on_stored(batch + second) == []
        detection.behind = True
        tick = detection.tick(datetime.now(UTC))
        assert tick == []
        thread = detection._catching_up
        assert thread is not None
        thread.join(60)
        assert not detection.behind
        assert detection.last_catch_up is not None
        assert detection.last_catch_up.read == {log_name: 9}
        assert detection.last_catch_up.skipped == 9
        assert _stored_alerts(detection) == []
    finally:
        detection.close()


def test_the_first_start_reads_nothing_stored_before_it(
    store: EmbeddedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_name = next(_names)
    feed = _Batches(log_name)
    old = feed.batch([_FAILED] * 10, "alice@contoso.com")
    store.write(old)
    caplog.set_level(logging.INFO, "hubsight")
    (tmp_path / "detect.toml").write_text("learning_days = 0\n")
    detection = Detection.open(tmp_path, store=store, sources=lambda: [log_name])
    try:
        assert detection.engine.began_positions
        assert "not read again" in caplog.text
        thread = detection.start_catch_up()
        assert thread is not None
        thread.join(60)
        assert detection.last_catch_up is not None
        assert detection.last_catch_up.read == {}
        assert _stored_alerts(detection) == []
        # What is stored from now on is read: a batch detection failed on.
        new = feed.batch([_FAILED] * 10, "bob@contoso.com")
        store.write(new)
        detection.behind = True
        detection.on_stored([])
        assert {a.user for a in _stored_alerts(detection)} == {"bob@contoso.com"}
    finally:
        detection.close()
    again = Detection.open(tmp_path, store=store, sources=lambda: [log_name])
    try:
        assert not again.engine.began_positions
        assert again.engine.positions_since == detection.engine.positions_since
    finally:
        again.close()


def test_events_that_name_no_place_are_processed_live_and_never_read_again(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    feed = _Batches(log_name)
    detection = _detection(tmp_path, store, log_name)
    try:
        detection.on_stored([])
        unplaced = feed.batch([_FAILED] * 10, "alice@contoso.com")
        for event in unplaced:
            event.source_offset = None
        store.write(unplaced)
        assert _new(detection.on_stored(unplaced)) == ["auth.brute_force"]
        assert detection.engine.positions() == {}
        detection.behind = True
        detection.on_stored([])
        assert detection.last_catch_up is not None
        assert detection.last_catch_up.read == {}
    finally:
        detection.close()


def test_pages_follow_the_order_received_across_partitions(store: EmbeddedStore) -> None:
    log_name = next(_names)
    feed = _Batches(log_name, partitions=3)
    written: list[Event] = []
    start = datetime.now(UTC)
    for round_ in range(4):
        for partition in (2, 0, 1):
            # A poll's messages share their received time, whatever their partition.
            received = start + timedelta(milliseconds=round_)
            batch = feed.batch(
                [_FAILED] * 2, f"u{round_}@contoso.com", partition=partition, received=received
            )
            written += batch
            store.write(batch)
    first = _ms(written[0])
    pages = list(stored_beyond(store, log_name, first, page=5))
    assert [len(p) for p in pages] == [5, 5, 5, 5, 4]
    got = [(e.source_partition, e.source_offset) for page in pages for e in page]
    want = sorted(((_ms(e), e.source_partition, e.source_offset) for e in written), key=lambda k: k)
    assert got == [(p, o) for _, p, o in want]
    # From a later time, only what was received from then on.
    later = _ms(written[-1])
    tail = [e for page in stored_beyond(store, log_name, later, page=5) for e in page]
    assert {e.user for e in tail} == {"u3@contoso.com"}


def _ms(event: Event) -> int:
    assert event.received_time is not None
    return (event.received_time - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_an_event_the_engine_fails_on_again_is_passed_over_and_detection_goes_on(
    store: EmbeddedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_name = next(_names)
    breaks = _Breaks(RuleConfig())  # broken for good: every failed sign-in makes it raise
    detection = _detection(
        tmp_path, store, log_name, [BruteForce(BruteForce.config_type()), breaks]
    )
    feed = _Batches(log_name)
    try:
        detection.on_stored([])
        batch = (
            feed.batch(["SUCCESS"], "bob@contoso.com")
            + feed.batch([_FAILED], "alice@contoso.com")
            + feed.batch(["SUCCESS"], "carol@contoso.com")
        )
        store.write(batch)
        with pytest.raises(RuntimeError):
            detection.on_stored(batch)
        assert detection.behind
        later = feed.batch(["SUCCESS"], "dave@contoso.com")
        store.write(later)
        detection.on_stored(later)
        assert not detection.behind
        assert detection.passed_over == 1
        assert f"{log_name} at topic example, partition 0, offset 1, record 0" in caplog.text
        # Bob was processed live before Alice's event failed (read back, skipped); Carol and
        # Dave after it (stats count the calls that ended well); Dave's live batch was read.
        assert detection.last_catch_up is not None
        assert detection.last_catch_up.skipped == 1
        assert detection.engine.stats.events == 2
        assert detection.repeated == 1
        assert detection.engine.positions() == {(log_name, "example", 0): (_ms(later[0]), 3, 0)}
    finally:
        detection.close()


@pytest.mark.parametrize(
    ("held", "fresh", "told"),
    [
        # Processed up to the second event of partition 0: its first two are read and skipped.
        ({0: 1}, 10, [3, 5, 2]),
        # And up to the third of partition 1, in the same millisecond.
        ({0: 1, 1: 2}, 7, [2, 3, 2]),
        # All of partition 0; partition 1 was never processed.
        ({0: 3}, 8, [1, 5, 2]),
    ],
)
def test_a_catch_up_counts_what_it_will_process_and_tells_each_page(
    store: EmbeddedStore, held: dict[int, int], fresh: int, told: list[int]
) -> None:
    log_name = next(_names)
    feed = _Batches(log_name, partitions=2)
    # One millisecond, as the records of one message: reading starts there.
    at = datetime.now(UTC)
    first = feed.batch([_FAILED] * 4, "alice@contoso.com", received=at)
    rest = feed.batch([_FAILED] * 8, "alice@contoso.com", partition=1, received=at)
    store.write(first + rest)
    positions = {
        (log_name, "example", partition): (_ms(first[0]), offset, 0)
        for partition, offset in held.items()
    }
    # Another log's place, further on in that millisecond, changes nothing of this one's.
    positions[("another log", "example", 1)] = (_ms(first[0]), 100, 0)
    # What it will process: the events it reads less those processed already.
    assert count_beyond([log_name], store, positions, 0) == {log_name: fresh}
    pages: list[tuple[str, int]] = []
    processed: list[Event] = []
    done = catch_up(
        [log_name],
        store,
        positions,
        0,
        processed.extend,
        page=5,
        progress=lambda *t: pages.append(t),
    )
    assert pages == [(log_name, n) for n in told]
    assert done.events == 12
    assert len(processed) == fresh == 12 - done.skipped


def test_notifications_due_are_tried_every_minute_while_detection_is_behind(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    log_name = next(_names)
    # The event store does not answer: every catch-up fails, and detection stays behind.
    detection = _detection(tmp_path, _Flaky(store, failures=1000), log_name)
    with http_receiver() as (url, received):
        soar = WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",))
        detection.notifier = Notifier.for_targets([soar], detection.engine.db)
        # Left due (a delivery pass that failed, say), with no batch to wake the sender.
        assert detection.notifier.queue([notify.test_alert(soar)]) == 1
        try:
            assert detection.tick(datetime.now(UTC)) == []
            assert detection.behind
            assert detection.wait_delivered()
            assert len(received.requests) == 1
        finally:
            detection.close()
