"""Opening the detection engine of a data directory, for the collector, the CLI and the API."""

from __future__ import annotations

import difflib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect import outbox
from hubsight.detect.alerts import Alert
from hubsight.detect.base import Rule
from hubsight.detect.catchup import CaughtUp, catch_up, count_beyond
from hubsight.detect.custom import Searcher, build_custom_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.delivery import Deliverer
from hubsight.detect.engine import (
    DetectionEngine,
    EngineOptions,
    covered,
    position_of,
    tune_gc,
)
from hubsight.detect.expiry import Expired
from hubsight.detect.generation import settings_generation
from hubsight.detect.notify import Notifier, NotifyReport
from hubsight.detect.ruleset import RuleSet, build_ruleset, rules_dir_default
from hubsight.detect.settings import CONFIG_NAME, DetectConfig, SettingsStore
from hubsight.detect.sigma import load_sigma_rules
from hubsight.detect.state import Partition, Position
from hubsight.detect.targets import Configured, TargetStore, configured
from hubsight.errors import HubsightError, StoreError
from hubsight.health import DetectionLag
from hubsight.metrics import Metrics
from hubsight.parsing.event import Event
from hubsight.store.base import EventStore
from hubsight.store.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRequest:
    """What to open: a live engine (persisted) or a backtest (in memory)."""

    data_dir: Path
    persist: bool = True
    rules_dir: Path | None = None
    learning: timedelta | None = None
    # Runs the custom LEQL alerts of detect.toml; without it they are not loaded.
    searcher: Searcher | None = None


def load_ruleset(
    data_dir: Path, db: DetectDB, rules_dir: Path | None = None, searcher: Searcher | None = None
) -> RuleSet:
    """The rules of a data directory: built-ins, Sigma rules from ``rules_dir``, custom alerts."""
    config = DetectConfig.load(data_dir)
    folder = rules_dir or rules_dir_default(data_dir)
    extra: list[Rule[Any]] = (
        [r.rule for r in load_sigma_rules(folder) if r.rule is not None] if folder.is_dir() else []
    )
    if searcher is not None:
        extra += build_custom_rules(config.custom, searcher)
    return build_ruleset(config, SettingsStore(db).all(), extra=extra)


def warn_unknown_rules(config: DetectConfig, ruleset: RuleSet) -> None:
    """Log each rule ``detect.toml`` sets that no rule has: a typo there left a rule meant to
    be off or tuned running as shipped, with nothing said. Not an error: a Sigma file removed
    from the rules folder must not stop collection."""
    known = {rule.meta.id for rule in ruleset.rules} | set(ruleset.disabled)
    # Custom alerts are rules only once a store can run their queries; their ids are known.
    known |= {f"custom.{spec.id}" for spec in config.custom}
    for rule_id in sorted(set(config.rules) - known):
        near = difflib.get_close_matches(rule_id, sorted(known), n=1)
        log.warning(
            "%s sets rule %r, which no rule has, so its settings do nothing (%s`hubsight rules "
            "list` lists the rules)",
            CONFIG_NAME,
            rule_id,
            f"did you mean {near[0]!r}? " if near else "",
        )


def open_engine(request: EngineRequest) -> DetectionEngine:
    """The engine of a data directory; a backtest keeps its state and alerts in memory.

    Tunes the process's garbage collector for it (``tune_gc``).
    """
    tune_gc()
    config = DetectConfig.load(request.data_dir)
    settings_db = DetectDB.in_dir(request.data_dir)
    ruleset = load_ruleset(request.data_dir, settings_db, request.rules_dir, request.searcher)
    warn_unknown_rules(config, ruleset)
    db = settings_db if request.persist else DetectDB(Path(":memory:"))
    if not request.persist:
        settings_db.close()
    options = EngineOptions(
        lateness=config.lateness,
        learning=config.learning if request.learning is None else request.learning,
        baseline_horizon=config.baseline_horizon,
        investigation_window=config.investigation_window,
        max_window_entries=config.max_window_entries,
        persist=request.persist,
    )
    return DetectionEngine(db, ruleset.rules, options=options, exceptions=ruleset.exceptions)


def load_targets(data_dir: Path, db: DetectDB) -> list[Configured]:
    """The notification targets in use: ``detect.toml``'s and the stored ones (these win)."""
    stored = TargetStore(db, Vault(data_dir)).all()
    return configured(DetectConfig.load(data_dir).notify, stored)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


# Settings generation, detect.toml's and the Sigma folder's modification times.
Fingerprint = tuple[int, int | None, int | None]


@dataclass(frozen=True, slots=True)
class SettingsWatch:
    """Where a live engine's settings come from, and a cheap fingerprint of them."""

    data_dir: Path
    rules_dir: Path | None = None
    searcher: Searcher | None = None

    def fingerprint(self, db: DetectDB) -> Fingerprint:
        """Changes with every CLI/API change, ``detect.toml`` edit and Sigma file added."""
        folder = self.rules_dir or rules_dir_default(self.data_dir)
        return (
            settings_generation(db),
            _mtime(self.data_dir / CONFIG_NAME),
            _mtime(folder / "sigma"),
        )

    def ruleset(self, db: DetectDB) -> RuleSet:
        """The rules as the settings now say."""
        return load_ruleset(self.data_dir, db, self.rules_dir, self.searcher)

    def notifier(self, db: DetectDB) -> Notifier:
        """A notifier for the targets the settings now name."""
        return Notifier.for_targets([c.target for c in load_targets(self.data_dir, db)], db)


class Detection:
    """The engine and its notifier, as the collector uses them after each stored batch.

    Settings changed while it runs (rules switched, tuned or excepted, notification targets
    added, changed or removed, by the API in this process or by the CLI in another) apply to the
    next batch or tick at most ``refresh_s`` after the change; the engine keeps its windows and
    baselines across the change.

    Given the event ``store`` and the collected log names (``sources``), it catches up
    (``catchup``): at start, and after a batch it failed on, it first processes what was stored
    beyond the engine's positions; until that succeeds no live batch is processed (each is in
    the store, and read with the rest).

    Notifications are recorded as due in the transaction that saves their alerts (the engine's
    ``on_save``, ``outbox``) and sent by a thread of their own (``delivery``), woken after each
    batch and tick and at start (``start``, for what a killed process left unsent): a receiver
    that takes its time never holds up the collector's thread. ``close`` gives it ``grace_s``
    seconds to send what is due; what is left is sent at the next start.
    """

    def __init__(
        self,
        engine: DetectionEngine,
        notifier: Notifier,
        watch: SettingsWatch | None = None,
        *,
        refresh_s: float = 1.0,
        seen: Fingerprint | None = None,
        store: EventStore | None = None,
        sources: Callable[[], Iterable[str]] | None = None,
        grace_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self._notifier = notifier
        self._grace_s = grace_s
        self._watch = watch
        self._refresh_s = refresh_s
        # What the engine was built from; taken before building, so no change slips between.
        self._seen = seen or (watch.fingerprint(engine.db) if watch is not None else None)
        self._checked = time.monotonic()
        self._refreshing = threading.Lock()
        self._detecting = threading.Lock()
        # Set by ``hubsight run`` to count alerts and failed notifications.
        self.metrics: Metrics | None = None
        self._store = store
        self._sources = sources
        # Whether events may be stored that the engine has not processed: at start, and after
        # a batch it failed on, until a catch-up succeeds.
        self.behind = (
            store is not None and sources is not None and engine.positions_since is not None
        )
        self.last_catch_up: CaughtUp | None = None
        # Where the last catch-up stopped reading, per partition, until live batches pass it;
        # and how many live events were dropped as read by it.
        self._read_to: dict[Partition, Position] = {}
        self.repeated = 0
        # Stored events the engine failed on twice (live, then read back), left unprocessed.
        self.passed_over = 0
        self._catching_up: threading.Thread | None = None
        # Per log name, the stored events the catch-up under way has yet to read (counted as
        # it began), for the sources' health.
        self._waiting: dict[str, int] = {}
        # What the failing catch-up meets, until one succeeds; with how many attempts failed.
        # Reported once (one traceback), not again by every batch that waits.
        self._problem: str | None = None
        self._failures = 0
        self._deliverer = Deliverer(engine.db, lambda: self._notifier, self._count_failures)
        engine.on_save = self._queue

    @property
    def notifier(self) -> Notifier:
        """The notifier of the targets in use."""
        return self._notifier

    @notifier.setter
    def notifier(self, notifier: Notifier) -> None:
        # The old one stops after its attempt in flight; the delivery thread goes on with this.
        old, self._notifier = self._notifier, notifier
        old.stop()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        searcher: Searcher | None = None,
        *,
        refresh_s: float = 1.0,
        store: EventStore | None = None,
        sources: Callable[[], Iterable[str]] | None = None,
    ) -> Detection:
        """The live detection of a data directory; custom LEQL alerts run with ``searcher``;
        with ``store`` and ``sources``, it catches up on the stored events of those logs."""
        watch = SettingsWatch(data_dir, searcher=searcher)
        db = DetectDB.in_dir(data_dir)
        seen = watch.fingerprint(db)
        db.close()
        engine = open_engine(EngineRequest(data_dir=data_dir, searcher=searcher))
        if engine.began_positions and store is not None:
            since = datetime.fromtimestamp((engine.positions_since or 0) / 1000, UTC)
            log.info(
                "detection keeps its place in the event store from now on: events stored "
                "before %s are not read again (the first start of this release on %s)",
                since.isoformat(timespec="seconds"),
                data_dir,
            )
        return cls(
            engine,
            watch.notifier(engine.db),
            watch,
            refresh_s=refresh_s,
            seen=seen,
            store=store,
            sources=sources,
        )

    def refresh(self, *, force: bool = False) -> bool:
        """Apply settings changed since the last look; whether they changed.

        Looks at most once per ``refresh_s`` unless forced. Settings that cannot be used (a bad
        ``detect.toml``) are logged and the running ones kept until the settings change again.
        """
        watch = self._watch
        if watch is None or (not force and time.monotonic() - self._checked < self._refresh_s):
            return False
        # Several collectors may call at once: one looks, the others go on with what runs.
        if not self._refreshing.acquire(blocking=force):
            return False
        try:
            self._checked = time.monotonic()
            seen = watch.fingerprint(self.engine.db)
            if seen == self._seen:
                return False
            self._seen = seen
            try:
                ruleset = watch.ruleset(self.engine.db)
                notifier = watch.notifier(self.engine.db)
                warn_unknown_rules(DetectConfig.load(watch.data_dir), ruleset)
            except HubsightError as exc:
                log.error(
                    "detection settings changed but cannot be used; the running ones stay: %s (%s)",
                    exc.message,
                    exc.hint,
                )
                return False
            self.engine.reconfigure(ruleset.rules, ruleset.exceptions)
            self.notifier = notifier
            log.info(
                "detection settings applied: %d rules on, %d off, %d notification channels",
                len(ruleset.rules),
                len(ruleset.disabled),
                len(notifier.channels),
            )
            return True
        finally:
            self._refreshing.release()

    def on_stored(self, events: Sequence[Event]) -> list[Alert]:
        """Detect on a batch that was just stored; notify the new alerts and the withdrawn ones.

        Catches up first when behind. When it fails and the engine did not process the whole
        batch, detection is behind: the next batch (or the next tick) catches up first.
        """
        try:
            self.refresh()
            return self._notified(lambda: self.engine.process(self._not_read(events)))
        except Exception:
            if self._store is not None and not self.engine.holds(events):
                self._set_behind(True)
            raise

    def _not_read(self, events: Sequence[Event]) -> Sequence[Event]:
        """``events`` less those the last catch-up read (``_detecting`` held): a batch stored
        while it ran, handed over after it."""
        read_to = self._read_to
        if not read_to:
            return events
        fresh = []
        for event in events:
            at = position_of(event)
            held = read_to.get(at[0]) if at is not None else None
            if at is not None and held is not None:
                if covered(at[1], held):
                    self.repeated += 1
                    continue
                # Beyond what was read: so is everything after it in the partition.
                del read_to[at[0]]
            fresh.append(event)
        return fresh

    def tick(self, now: datetime) -> list[Alert]:
        """Check for silent sources; call about once a minute.

        While behind, it starts a catch-up in a thread of its own instead (a long one must not
        hold the service's loop), and silence is not judged until it is done; what notifications
        are due (left by a delivery that failed) are still tried every minute.
        """
        if self.behind:
            self._deliverer.wake()
            self.start_catch_up()
            return []
        self.refresh()
        return self._notified(lambda: self.engine.tick(now))

    def expire_cases(self, days: int | None, now: datetime) -> Expired:
        """Apply case retention (``days``; None: keep for ever): delete what is due, for a
        couple of seconds at most; the rest goes at the next call (``expiry``)."""
        if days is None:
            return Expired()
        expired = self.engine.expire_cases(days, now.timestamp())
        if expired.alerts or expired.investigations:
            log.info(
                "case retention: deleted %d alerts and %d investigations closed and unchanged "
                "for %d days%s",
                expired.alerts,
                expired.investigations,
                days,
                "" if expired.done else "; more next minute",
            )
        return expired

    def start(self) -> threading.Thread | None:
        """At start: have the delivery thread send what a killed process left due, and catch up
        when behind (``start_catch_up``); the catch-up's thread, if one started."""
        self._deliverer.wake()
        return self.start_catch_up()

    def start_catch_up(self) -> threading.Thread | None:
        """Catch up when behind, in a thread of its own, unless one runs; that thread."""
        running = self._catching_up
        if running is not None and running.is_alive():
            return None
        if not self.behind:
            return None
        thread = threading.Thread(target=self._catch_up_logged, name="detect-catch-up", daemon=True)
        self._catching_up = thread
        thread.start()
        return thread

    def _catch_up_logged(self) -> None:
        try:
            with self._detecting:
                self._catch_up()
        except Exception as exc:  # noqa: BLE001 - reported; the next batch or tick tries again
            self._catch_up_failed(exc)

    def _catch_up_failed(self, exc: Exception) -> None:
        """Report a failed catch-up: one line when its problem changes, the traceback only the
        first time (each waiting batch meets the same failure)."""
        self._failures += 1
        if isinstance(exc, HubsightError):
            problem, hint = exc.message, exc.hint
        else:
            problem, hint = f"{type(exc).__name__}: {exc}", ""
        if problem == self._problem:
            return
        first = self._problem is None
        self._problem = problem
        log.error(
            "detection is behind: it cannot read back the stored events it has not processed: "
            "%s. %s; live batches wait in the event store meanwhile (nothing is lost) and it "
            "tries again before each batch and every minute",
            problem,
            hint or "check that the event store answers (`hubsight status`, this log)",
            exc_info=exc if first else None,
        )

    def _catch_up(self) -> list[Alert]:
        """Process what was stored beyond the engine's positions (``_detecting`` held); the
        alerts it created or changed (notified already)."""
        since = self.engine.positions_since
        if not self.behind or self._store is None or self._sources is None or since is None:
            return []
        names = sorted(set(self._sources()))
        if not names:
            # No source to read back (none added yet, or all removed): nothing waits.
            self._set_behind(False)
            return []
        log.info("detection is reading the events of %s it has not processed", ", ".join(names))
        changed: list[Alert] = []
        positions = self.engine.positions()
        self._waiting = count_beyond(names, self._store, positions, since)

        def progress(log_name: str, read: int) -> None:
            self._waiting[log_name] = max(self._waiting.get(log_name, 0) - read, 0)

        def process(events: list[Event]) -> None:
            while events:
                try:
                    alerts = self.engine.process(events)
                except Exception as exc:  # noqa: BLE001 - whatever it is, one event is passed over
                    events = self._past_failing(events, exc)
                    continue
                self._notify(alerts)
                changed.extend(alerts)
                return

        done = catch_up(names, self._store, positions, since, process, progress=progress)
        self.last_catch_up = done
        self._read_to.update(done.read_to)
        self._set_behind(False)
        log.info(
            "detection caught up: %d stored events read again in %.1f s (%s), %d of them "
            "processed already%s",
            done.events,
            done.seconds,
            ", ".join(f"{name} {count}" for name, count in done.read.items()) or "none",
            done.skipped,
            f"; {self._failures} attempts had failed" if self._failures else "",
        )
        self._waiting, self._problem, self._failures = {}, None, 0
        if self.metrics is not None:
            self.metrics.detection_caught_up.inc(done.events - done.skipped)
            self.metrics.detection_catch_up_seconds.observe(done.seconds)
        return changed

    def _past_failing(self, events: list[Event], exc: Exception) -> list[Event]:
        """What is left of ``events`` after one the engine failed on again (its first
        unprocessed one), which is passed over; raises ``exc`` when there is none (the engine
        processed them all and failed after, saving: the catch-up stops and is tried again).

        An event that makes the engine itself fail (not a rule: those are caught one by one)
        failed when it came live, and fails again read back: going on without it is the only
        way detection goes on at all, as the collector stores a record no parser reads.
        """
        positions = self.engine.positions()
        rest = []
        for event in events:
            at = position_of(event)
            held = positions.get(at[0]) if at is not None else None
            if at is None or held is None or not covered(at[1], held):
                rest.append(event)
        if not rest:
            raise exc
        failing = rest[0]
        self.engine.pass_over(failing)
        self.passed_over += 1
        log.error(
            "detection failed on the stored event of %s at topic %s, partition %s, offset %s, "
            "record %s (event time %s) again: it is passed over, and detection goes on with the "
            "events after it: %s: %s",
            failing.log_name,
            failing.source_topic,
            failing.source_partition,
            failing.source_offset,
            failing.record_index,
            failing.timestamp.isoformat(),
            type(exc).__name__,
            exc,
        )
        return rest[1:]

    def lag(self, log_names: Iterable[str]) -> dict[str, DetectionLag]:
        """How far detection is behind what each of ``log_names`` stored; none when it is not
        (for the sources' health)."""
        if not self.behind:
            return {}
        waiting, problem = dict(self._waiting), self._problem
        return {name: DetectionLag(waiting.get(name), problem) for name in log_names}

    def _set_behind(self, behind: bool) -> None:
        self.behind = behind
        if self.metrics is not None:
            self.metrics.detection_behind.set(int(behind))

    def _notified(self, detect: Callable[[], list[Alert]]) -> list[Alert]:
        # The engine keeps only its last call's withdrawals: they are read before another
        # collector's batch replaces them (the engine runs one batch at a time anyway).
        with self._detecting:
            # Behind, the batch is in the store with what the engine has not processed: read
            # in order with it, or not at all when that fails.
            try:
                caught = self._catch_up()
            except Exception as exc:  # noqa: BLE001 - reported; the batch is read with the rest
                self._catch_up_failed(exc)
                return []
            alerts = detect()
        self._notify(alerts)
        return caught + alerts

    def _queue(
        self,
        conn: sqlite3.Connection,
        alerts: list[Alert],
        withdrawn: list[Alert],
        opened: dict[str, str],
    ) -> None:
        """Record in the engine's save what the saved alerts make due (``on_save``)."""
        outbox.queue(conn, self.notifier.channels, alerts, withdrawn, opened)

    def _notify(self, alerts: list[Alert]) -> None:
        """Count ``alerts`` (saved, their notifications due) and wake the delivery thread."""
        if self.metrics is not None:
            self.metrics.alerted(a.rule_id for a in alerts if a.revision == 1 and not a.notable)
        self._deliverer.wake()

    def deliver(self) -> NotifyReport:
        """Send the notifications due (those of every save so far) on the caller's thread; one
        pass at a time, the delivery thread's included."""
        return self._deliverer.deliver()

    def wait_delivered(self, timeout: float = 30.0) -> bool:
        """Wait until the delivery thread tried what was due at its last wake; whether it did
        within ``timeout`` seconds."""
        return self._deliverer.wait(timeout)

    def notifications_due(self) -> int:
        """How many notifications are recorded and not yet sent."""
        return outbox.count(self.engine.db)

    def _count_failures(self, report: NotifyReport) -> None:
        if self.metrics is not None:
            for channel in report.failed:
                self.metrics.notification_failures.labels(channel).inc()

    def close(self) -> None:
        """Save pending state, send what is due (for up to ``grace_s`` seconds, what is left
        going at the next start), close."""
        try:
            with self._detecting:
                pending = self.engine.save_pending()
        except StoreError as exc:
            # Its batches are beyond the saved positions: the next start reads them again.
            log.error(
                "detection's last changes were not saved (%s): the next start detects on "
                "their events again",
                exc.message,
            )
        else:
            self._notify(pending.changed)
        self._deliverer.close(self._grace_s)
        self.engine.close()
