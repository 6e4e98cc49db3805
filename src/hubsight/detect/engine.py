"""The streaming detection engine: events in (by event time), deduplicated alerts out.

The collector calls ``DetectionEngine.process(batch)`` after each batch is stored. Every batch
ends in one SQLite transaction holding the window changes and alerts it made, how far it read
each source partition of the event store (``positions``: the last event's received time,
offset and record index) and, every half minute, the baselines changed since. So the saved
state and the saved positions always agree: after a crash, or a batch detection failed on,
``catchup`` reads what was stored beyond the positions from the event store and processes it
before live batches (a failed save leaves its batch's changes, positions included, to be saved
with the next); events it reads that were processed already are skipped, so none is processed
twice. Findings a late event showed untrue are retracted: an alert left without evidence is
withdrawn (deleted, unless someone triaged it) and its id listed in ``withdrawn``.

Windowed rules see events up to ``lateness`` behind the newest event time; later ones still
reach single-event and baseline rules and are counted in ``stats.too_late``.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hubsight.detect.alerts import Alert, AlertStore, alert_id
from hubsight.detect.base import EventKind, EventRef, Finding, Rule, RuleContext
from hubsight.detect.baseline import observe_signin
from hubsight.detect.context import EngineContext, shared_id
from hubsight.detect.dataplane import feed
from hubsight.detect.db import DetectDB
from hubsight.detect.expiry import Chunk, Expired, Walk, sweep
from hubsight.detect.folding import AlertFolder, Taken
from hubsight.detect.grouping import group_alerts, release_alerts
from hubsight.detect.pim import observe_activation
from hubsight.detect.settings import RuleExceptions
from hubsight.detect.sigma.index import Indexed, SigmaIndex, split_indexed
from hubsight.detect.state import EngineState, Partition, Position, StateSize
from hubsight.detect.windows import ENTRY_BYTES, Window
from hubsight.parsing.event import Event, LogSet

log = logging.getLogger(__name__)

_AUTH = (LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION)
# Events dated further ahead of the wall clock than this do not move the watermark: one bad
# clock must not make every other event "too late".
_FUTURE_SLACK = 300.0
# Pruning visits every window: every six hours of event time it costs little, and windows keep
# at most that much more than they need.
_PRUNE_EVERY = 6 * 3600.0


# The engine holds a large heap that lives long (windows, baselines) and allocates young objects
# at a high rate. With CPython's default thresholds (700, 10, 10) the cyclic collector ran every
# few hundred events and took 15% of detection time on a 7-day tenant; its objects rarely form
# cycles, so collecting a little less often frees the same memory at a fraction of the cost.
GC_THRESHOLDS = (10_000, 10, 10)


_POSITIONS_SINCE = "positions_since"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _position(event: Event, received_ms: int) -> tuple[Partition, Position] | None:
    """Where ``event`` lies in its source partition of the event store; None for an event that
    names none (no topic, partition or record index: such events are not read again)."""
    topic, partition, index = event.source_topic, event.source_partition, event.record_index
    if topic is None or partition is None or index is None or event.source_offset is None:
        return None
    return (event.log_name, topic, partition), (received_ms, event.source_offset, index)


def covered(at: Position, held: Position) -> bool:
    """Whether an event at ``at`` came before its partition reached ``held``, when the
    partition's events come in the order stored.

    Both its received time and its place (offset, record index) must be at or before the
    position's: a topic created again numbers its messages from 0, later; a clock set back
    receives later messages at an earlier time. Either alone reads as new, never as seen.
    """
    return at[0] <= held[0] and at[1:] <= held[1:]


def position_of(event: Event) -> tuple[Partition, Position] | None:
    """Where ``event`` lies in its source partition of the event store, if it names it."""
    if event.received_time is None:
        return None
    return _position(event, (event.received_time - _EPOCH) // _MS)


def tune_gc() -> None:
    """Set the process's cyclic GC thresholds for running an engine (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """Timing of the engine."""

    lateness: timedelta = timedelta(hours=24)
    learning: timedelta = timedelta(days=7)
    baseline_horizon: timedelta = timedelta(days=90)
    # Replays (backtests) keep state in memory only and touch nothing on disk.
    persist: bool = True
    # Baselines are large (kilobytes each) and nearly every batch touches most of them: the
    # changed ones are saved together at most this often (wall clock) and at close(), not on
    # every batch. A crash forgets the learning since the last save: a sign-in seen only then
    # may look new once more (an extra notable), which loses no alert.
    baseline_save_interval: timedelta = timedelta(seconds=30)
    # Alerts about the same user, address or resource this close in event time share an
    # investigation (see ``grouping``).
    investigation_window: timedelta = timedelta(hours=24)
    # Windows keep every counted event for the lateness (24 h), the rule's retention and up to
    # the 6 h between prunes, ``ENTRY_BYTES`` (~240) of memory each with their windows. A
    # simulated 1,000-user tenant at 3.4 events/s with every rule (SigmaHQ's Azure folder too)
    # held up to 569,000 (137 MB) over 60 hours; 500,000 cut it every 4-6 hours of weekday
    # event time. Past this many entries the oldest quarter is dropped (as if the lateness were
    # shorter: rules keep their retention beyond it) and events that old are too late for
    # windowed rules from then on (``EngineState.shed``).
    max_window_entries: int = 750_000
    # However full the windows, events this late (or the lateness, if shorter) still reach
    # windowed rules: a cut for the cap never moves the "too late" time closer to the newest
    # event than this (Entra ID's logs arrive minutes, at times an hour or two, late).
    late_after_cut: timedelta = timedelta(hours=1)


@dataclass(slots=True)
class EngineStats:
    """What the engine has seen since it started."""

    events: int = 0
    too_late: int = 0
    # Times the windows went past their cap and were cut (``EngineOptions.max_window_entries``).
    window_cuts: int = 0
    rule_errors: dict[str, int] = field(default_factory=dict)
    last_rule_error: dict[str, str] = field(default_factory=dict)


# A rule as the dispatch table holds it: the rule, its evaluate, its context, its exceptions.
_Target = tuple[
    Rule[Any],
    Callable[[Event, RuleContext], Iterable[Finding]],
    EngineContext,
    Callable[[Event], bool] | None,
]
# Per kind of event, the rules that read it: for events within the lateness, and for later ones
# (windowed rules skip those: their windows are gone); and the single-event Sigma rules among
# them, as one matcher that says which of them match an event (``sigma.index``).
_Targets = tuple[list[_Target], list[_Target], SigmaIndex[_Target] | None]
# What ``DetectionEngine.on_save`` is given: the save's connection, the alerts it saved, those it
# withdrew, the investigations they opened (alert id -> investigation id).
SaveHook = Callable[[sqlite3.Connection, list[Alert], list[Alert], dict[str, str]], object]
# Kinds are few (log sets x results x operations); the cap guards against free-text operations.
_MAX_KINDS = 10_000


def _found(target: _Target, rule: Indexed) -> _Target:
    # A single-event Sigma rule its kind's index says matches: its finding, without the rule
    # testing its condition again.
    return (target[0], rule.found, target[2], target[3])


class DetectionEngine:
    """Runs rules over batches of events and keeps alerts in the detection database."""

    def __init__(
        self,
        db: DetectDB,
        rules: Sequence[Rule[Any]],
        *,
        options: EngineOptions = EngineOptions(),
        exceptions: Mapping[str, RuleExceptions] | None = None,
    ) -> None:
        self.db = db
        self.alerts = AlertStore(db)
        self.rules = list(rules)
        self.options = options
        self.stats = EngineStats()
        self._exceptions = {
            rule_id: exc for rule_id, exc in (exceptions or {}).items() if not exc.empty()
        }
        self._state = EngineState()
        self._horizon = options.baseline_horizon.total_seconds()
        self._contexts = {r.meta.id: self._context(r.meta.id) for r in rules}
        self._retention = self._window_retention()
        self._dispatch: dict[tuple[Any, ...], _Targets] = {}
        self._folder = AlertFolder(db, self.alerts, persist=options.persist)
        # The alerts the last ``process`` or ``tick`` withdrew, as last stored: for callers
        # keeping copies and for the notifier's follow-ups to whoever got them.
        self.withdrawn_alerts: list[Alert] = []
        # The alerts that opened an investigation in the last process/tick (alert id ->
        # investigation id), for notification targets set per investigation.
        self.opened_investigations: dict[str, str] = {}
        # Called inside each save's transaction with the alerts saved, those withdrawn and the
        # investigations opened: the notifications they make due are recorded with them
        # (``outbox``), so a crash after the save cannot lose them.
        self.on_save: SaveHook | None = None
        self._lock = threading.Lock()
        # Where case retention's sweeps have got to (``expiry``).
        self._expiry = Walk()
        # From when (ms, received time) positions are kept: a source partition without one is
        # read from there. None for an engine that keeps nothing.
        self.positions_since: int | None = None
        # Whether this start began keeping positions (an install new, or upgraded to it).
        self.began_positions = False
        if options.persist:
            self._state.load(self.db)
            self._adopt_shared()
            self.positions_since = self._positions_since()

    def _positions_since(self) -> int:
        """When positions began to be kept; now, saved at once, on the first start doing so."""
        saved = self.db.get_meta(_POSITIONS_SINCE)
        if saved is not None:
            return int(saved)
        # Saved before any batch: a crash before the first save must not move it later, past
        # events stored meanwhile.
        now = (datetime.now(UTC) - _EPOCH) // _MS
        self.db.execute("INSERT INTO meta VALUES (?, ?)", (_POSITIONS_SINCE, str(now)))
        self.began_positions = True
        return now

    def _context(self, rule_id: str) -> EngineContext:
        return EngineContext(
            rule_id,
            self._state,
            lateness=self.options.lateness,
            learning=self.options.learning,
            baseline_horizon=self.options.baseline_horizon,
            own=rule_id in self._exceptions,
        )

    def _shared_ids(self) -> dict[tuple[str, str], str]:
        """Per rule and name of a window it shares, where that window is kept."""
        return {
            (rule.meta.id, name): shared_id(
                name, rule.meta.id, own=rule.meta.id in self._exceptions
            )
            for rule in self.rules
            for name in rule.shares()
        }

    def _adopt_shared(self) -> None:
        """Move into the shared windows the entries rules kept in their own before sharing
        them (an upgrade): late events still find what came before it.

        Their saved rows stay until pruned: moved again at the next start, they are there
        already (``Window.add`` keeps one of each).
        """
        state = self._state
        for (rule_id, name), wid in self._shared_ids().items():
            rule = next(r for r in self.rules if r.meta.id == rule_id)
            prefix = rule.shared_from().get(name)
            if prefix is None:
                continue
            for wkey in [k for k in state.windows if k[0] == rule_id and k[1].startswith(prefix)]:
                old = state.windows.pop(wkey)
                state.dirty_windows.pop(wkey, None)
                state.entries -= len(old)
                target = (wid, wkey[1][len(prefix) :])
                window = state.windows.get(target)
                if window is None:
                    window = state.windows[target] = Window(key=target, changed=state.dirty_windows)
                # Added as a batch's entries are: saved, and counted, with the next batch.
                for entry in old:
                    window.add(entry)

    def _window_retention(self) -> dict[str, float]:
        """How long (seconds) beyond the lateness each rule's windows, and each shared window,
        keep their entries: a shared one as long as the rule sharing it that keeps longest."""
        keeps = {r.meta.id: r.retention().total_seconds() for r in self.rules}
        for (rule_id, _), wid in self._shared_ids().items():
            keeps[wid] = max(keeps.get(wid, 0.0), keeps[rule_id])
        return keeps

    def state_size(self) -> StateSize:
        """The windows, entries and baselines held (read without the engine's lock, for
        /metrics: each count is exact, the three a moment apart at worst)."""
        return self._state.size()

    def positions(self) -> dict[Partition, Position]:
        """How far each source partition of the event store was processed (held in memory:
        ahead of the saved ones while saves fail)."""
        with self._lock:
            return dict(self._state.positions)

    def pass_over(self, event: Event) -> None:
        """Move ``event``'s partition past it without processing it (an event the engine
        fails on); saved with the next batch."""
        at = position_of(event)
        if at is None or not self.options.persist:
            return
        with self._lock:
            self._state.positions[at[0]] = at[1]
            self._state.dirty_positions.add(at[0])

    def holds(self, events: Sequence[Event]) -> bool:
        """Whether every event of ``events`` that names its place was processed (always, for
        an engine that keeps no positions)."""
        if not self.options.persist:
            return True
        positions = self.positions()
        for event in events:
            at = position_of(event)
            if at is None:
                continue
            held = positions.get(at[0])
            if held is None or not covered(at[1], held):
                return False
        return True

    @property
    def withdrawn(self) -> list[str]:
        """Ids of the alerts the last ``process`` or ``tick`` withdrew."""
        return [a.id for a in self.withdrawn_alerts]

    def reconfigure(
        self, rules: Sequence[Rule[Any]], exceptions: Mapping[str, RuleExceptions] | None = None
    ) -> None:
        """Run ``rules`` with ``exceptions`` from the next batch on, keeping the engine's state.

        Windows of rules still present (by id, even with new thresholds), baselines, watermarks
        and alerts stay; windows of rules that are gone are dropped, here and on disk, so a rule
        enabled again later starts counting afresh instead of from stale entries.
        """
        with self._lock:
            kept_at = self._shared_ids()
            self.rules = list(rules)
            self._exceptions = {
                rule_id: exc for rule_id, exc in (exceptions or {}).items() if not exc.empty()
            }
            # A shared window a rule now keeps elsewhere (its exceptions came or went) starts
            # from a copy of where it kept it: late events still find what came before.
            held = {wkey[0] for wkey in self._state.windows}
            for use, wid in self._shared_ids().items():
                was = kept_at.get(use)
                if was is not None and was != wid and wid not in held:
                    self._state.copy_windows(was, wid)
                    held.add(wid)
            self._retention = self._window_retention()
            gone = {wkey for wkey in self._state.windows if wkey[0] not in self._retention}
            for wkey in gone:
                del self._state.windows[wkey]
            for wkey in gone:
                self._state.dirty_windows.pop(wkey, None)
            if self.options.persist:
                with self.db.transaction() as conn:
                    conn.executemany(
                        "DELETE FROM window_batches WHERE rule_id = ?",
                        [(rule_id,) for rule_id in {wkey[0] for wkey in gone}],
                    )
            contexts = self._contexts
            self._contexts = {}
            for rule in self.rules:
                rule_id = rule.meta.id
                ctx = contexts.get(rule_id)
                own = rule_id in self._exceptions
                self._contexts[rule_id] = (
                    ctx if ctx is not None and ctx.own == own else self._context(rule_id)
                )
            self._dispatch.clear()

    def process(self, events: Sequence[Event]) -> list[Alert]:
        """Run every enabled rule over ``events``; the alerts created or changed, new ones first.

        Thread-safe: collectors of several sources may share one engine. A persisted engine
        moves each source partition's position to the last of its events processed: collectors
        and ``catchup`` hand them over in the order they were stored.
        """
        with self._lock:
            return self._process(events)

    def _process(self, events: Sequence[Event]) -> list[Alert]:
        state = self._state
        lateness = self.options.lateness.total_seconds()
        ceiling = time.time() + _FUTURE_SLACK
        dispatch = self._dispatch
        fold = self._folder.fold
        arrivals: dict[tuple[str, str], datetime] = {}
        watermark = state.watermark
        positions, moved = state.positions, state.dirty_positions
        # Positions are the live engine's, fed in each partition's order; a backtest replays
        # stored events in event-time order and keeps none.
        track = self.options.persist
        received: datetime | None = None
        received_ms = 0
        for event in events:
            at: tuple[Partition, Position] | None = None
            if track and event.received_time is not None and event.source_offset is not None:
                # A message's events share their received time: converted once per message.
                if event.received_time is not received:
                    received = event.received_time
                    received_ms = (received - _EPOCH) // _MS
                at = _position(event, received_ms)
            ts = event.timestamp.timestamp()
            if ts > watermark:
                watermark = state.watermark = min(ts, max(ceiling, watermark))
            if event.received_time is not None:
                source = (event.log_name, event.category or "")
                seen = arrivals.get(source)
                if seen is None or event.received_time > seen:
                    arrivals[source] = event.received_time
            late = ts < watermark - lateness or ts < state.shed_before
            if late:
                self.stats.too_late += 1
            elif state.started is None or ts < state.started:
                state.started = ts
            result = event.result
            kind = (
                event.log_set,
                result,
                event.operation,
                bool(event.user),
                event.category,
                event.error_code,
            )
            targets = dispatch.get(kind) or self._targets(EventKind(*kind))
            # Every rule reading this kind, the unwindowed ones (for late events), the index.
            on_time, unwindowed, index = targets
            run = unwindowed if late else on_time
            if index is not None:
                run = run + index.select(event)
            for rule, evaluate, ctx, excepted in run:
                try:
                    # An excepted event raises nothing, but what it taught a baseline may still
                    # show a later finding untrue (or now true): the rule corrects those.
                    findings = (
                        rule.correct(event, ctx)
                        if excepted is not None and excepted(event)
                        else evaluate(event, ctx)
                    )
                    for finding in findings:
                        fold(rule, finding)
                except Exception as exc:  # noqa: BLE001 - one failing rule must not stop the others
                    self._failed(rule, exc)
            if result == "SUCCESS":
                if event.log_set in _AUTH:
                    subject = observe_signin(state.baselines, event, ts, self._horizon)
                    if subject is not None:
                        state.dirty_baselines[subject] = None
                elif event.log_set is LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY:
                    # The roles a user activated in PIM (``detect/pim.py``).
                    subject = observe_activation(state.baselines, event, ts, self._horizon)
                    if subject is not None:
                        state.dirty_baselines[subject] = None
                # Data-plane first sightings and the tenant's sign-in networks (``dataplane``).
                feed(state, event, ts, self._horizon)
            if at is not None:
                positions[at[0]] = at[1]
                moved.add(at[0])
        for source, received in arrivals.items():
            self._saw_source(source, received.timestamp())
        state.entries += sum(len(window.added) for window in state.dirty_windows.values())
        if state.entries > self.options.max_window_entries:
            self._shed()
        if state.watermark - state.pruned_at >= _PRUNE_EVERY:
            state.prune(lateness, self._retention, self._horizon)
        changed = self._commit()
        # Counted once committed, so a reader seeing the count also sees the alerts.
        self.stats.events += len(events)
        return changed

    def _shed(self) -> None:
        cap = self.options.max_window_entries
        held = self._state.entries
        floor = min(self.options.late_after_cut, self.options.lateness).total_seconds()
        cut = self._state.shed(
            cap * 3 // 4,
            self._retention,
            latest=self._state.watermark - floor,
        )
        self.stats.window_cuts += 1
        log.warning(
            "detection windows held %d entries, over their cap of %d: the oldest were dropped, "
            "and events before %s are too late for windowed rules from now on (raise "
            "max_window_entries in detect.toml to keep more, ~%d bytes of memory each)",
            held,
            cap,
            datetime.fromtimestamp(cut, UTC).isoformat(timespec="seconds"),
            ENTRY_BYTES,
        )

    def _targets(self, kind: EventKind) -> _Targets:
        if len(self._dispatch) >= _MAX_KINDS:
            self._dispatch.clear()
        on_time: list[_Target] = []
        for rule in self.rules:
            if rule.reads(kind):
                rule_exceptions = self._exceptions.get(rule.meta.id)
                excepted = rule_exceptions.matches if rule_exceptions is not None else None
                on_time.append((rule, rule.evaluate, self._contexts[rule.meta.id], excepted))
        on_time, index = split_indexed(on_time, lambda target: target[0], _found)
        targets = (on_time, [t for t in on_time if not t[0].meta.windowed], index)
        self._dispatch[kind] = targets
        return targets

    def tick(self, now: datetime) -> list[Alert]:
        """Let rules that watch the clock (silent sources) speak; call it every minute or so."""
        with self._lock:
            return self._tick(now)

    def _tick(self, now: datetime) -> list[Alert]:
        for rule in self.rules:
            try:
                for finding in rule.check(now, self._contexts[rule.meta.id]):
                    self._folder.fold(rule, finding)
            except Exception as exc:  # noqa: BLE001 - one failing rule must not stop the others
                self._failed(rule, exc)
        return self._commit()

    def _failed(self, rule: Rule[Any], exc: Exception) -> None:
        rule_id = rule.meta.id
        self.stats.rule_errors[rule_id] = self.stats.rule_errors.get(rule_id, 0) + 1
        self.stats.last_rule_error[rule_id] = f"{type(exc).__name__}: {exc}"
        log.warning("rule %s failed: %s", rule_id, exc)

    def _saw_source(self, key: tuple[str, str], ts: float) -> None:
        if ts > self._state.sources.get(key, 0.0):
            self._state.sources[key] = ts
            self._state.dirty_sources.add(key)

    def _commit(self) -> list[Alert]:
        taken = self._save_taken()
        self.withdrawn_alerts = taken.withdrawn
        return taken.changed

    def _save_taken(self, *, flush_baselines: bool = False) -> Taken:
        # A save that fails leaves the folder's batch and the state's changes recorded: the next
        # save writes them with its own, so a failed save loses nothing (the collector does not
        # deliver a batch again once it is stored).
        taken = self._folder.take()
        if self.options.persist:
            self._save(
                taken.changed,
                withdrawn=taken.withdrawn,
                stored_evidence=taken.stored_evidence,
                flush_baselines=flush_baselines,
            )
        else:
            self._state.saved()
        self._folder.saved()
        return taken

    def expire_cases(self, days: int, now: float) -> Expired:
        """Delete the closed alerts and investigations due under case retention, a chunk at a
        time between batches, forgetting what the engine held of them (``expiry``)."""

        def between(step: Callable[[], Chunk]) -> Chunk:
            with self._lock:
                chunk = step()
                self._folder.forget(chunk.gone)
            return chunk

        return sweep(self.db, days, now, walk=self._expiry, between=between)

    def save_pending(self) -> Taken:
        """Save everything still pending (baselines included); what a failed save had left,
        now saved: its alerts and withdrawals were returned to no one."""
        with self._lock:
            if not self.options.persist:
                return Taken([], [], {})
            return self._save_taken(flush_baselines=True)

    def close(self) -> None:
        """Save everything still pending (baselines included) and close the database."""
        with self._lock:
            if self.options.persist:
                # Alerts a failed save left are saved too; ``withdrawn`` still tells what the
                # last batch withdrew.
                self._save_taken(flush_baselines=True)
            self.db.close()

    def _save(
        self,
        alerts: list[Alert],
        *,
        withdrawn: list[Alert],
        stored_evidence: Mapping[str, list[EventRef]] | None = None,
        flush_baselines: bool = False,
    ) -> None:
        now = time.time()
        every = None if flush_baselines else self.options.baseline_save_interval.total_seconds()
        baselines = self._state.baselines_due(every)
        with self.db.transaction() as conn:
            self._state.save(conn, baselines=baselines)
            self.alerts.save(conn, alerts, now, stored=stored_evidence)
            # A withdrawn alert someone already triaged stays, with its last evidence.
            conn.executemany(
                "DELETE FROM alerts WHERE dedup_key = ? AND status = 'open' AND assignee IS NULL "
                "AND disposition IS NULL AND id NOT IN (SELECT alert_id FROM alert_history)",
                [(alert.dedup_key,) for alert in withdrawn],
            )
            release_alerts(conn, [alert_id(alert.dedup_key) for alert in withdrawn])
            window = self.options.investigation_window.total_seconds()
            opened = group_alerts(conn, alerts, window, now)
            if self.on_save is not None:
                self.on_save(conn, alerts, withdrawn, opened)
        self._state.saved(baselines=baselines)
        self.opened_investigations = opened
