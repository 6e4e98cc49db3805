"""The streaming detection engine: events in (by event time), deduplicated alerts out.

The collector calls ``DetectionEngine.process(batch)`` after each batch is stored. Every batch
ends in one SQLite transaction holding the window changes and alerts it made (and, every half
minute, the baselines changed since), so a crash loses at most the batch being processed; since
windows ignore an event they already hold and alerts merge by dedup key, processing that batch
again after a restart yields the same alerts and re-fires nothing. Findings a late event showed
untrue are retracted: an alert left without evidence is withdrawn (deleted, unless someone
triaged it) and its id listed in ``withdrawn``.

Windowed rules see events up to ``lateness`` behind the newest event time; later ones still
reach single-event and baseline rules and are counted in ``stats.too_late``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hubsight.detect.alerts import (
    Alert,
    AlertFilter,
    AlertStore,
    alert_id,
    merge_context,
    merge_evidence,
)
from hubsight.detect.base import EventKind, EventRef, Finding, Rule, RuleContext
from hubsight.detect.baseline import SignIn, UserBaseline, from_epoch, network_of
from hubsight.detect.dataplane import feed
from hubsight.detect.db import DetectDB
from hubsight.detect.grouping import group_alerts, release_alerts
from hubsight.detect.notables import relink
from hubsight.detect.sessions import MERGED_INTO, Sessions, Span, session_prefix
from hubsight.detect.settings import RuleExceptions
from hubsight.detect.state import EngineState
from hubsight.detect.windows import Window
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


@dataclass(slots=True)
class EngineStats:
    """What the engine has seen since it started."""

    events: int = 0
    too_late: int = 0
    rule_errors: dict[str, int] = field(default_factory=dict)
    last_rule_error: dict[str, str] = field(default_factory=dict)


class _Context:
    """One rule's view of the engine state (implements ``RuleContext``)."""

    __slots__ = ("_changed", "_options", "_rule_id", "_state", "_windows")

    def __init__(self, rule_id: str, state: EngineState, options: EngineOptions) -> None:
        self._rule_id = rule_id
        self._state = state
        self._options = options
        # Rules ask for windows a million times an hour: the two collections, at hand.
        self._windows = state.windows
        self._changed = state.dirty_windows

    @property
    def baseline_horizon(self) -> timedelta:
        """How far back baselines look."""
        return self._options.baseline_horizon

    @property
    def lateness(self) -> timedelta:
        """How late events may arrive."""
        return self._options.lateness

    def window(self, key: str) -> Window:
        """The rule's window for ``key``; saved at the end of the batch if it changed."""
        wkey = (self._rule_id, key)
        window = self._windows.get(wkey)
        if window is None:
            window = self._windows[wkey] = Window(key=wkey, changed=self._changed)
        return window

    def baseline(self, subject: str) -> UserBaseline:
        """The baseline of ``subject`` (empty when never seen)."""
        return self._state.baselines.get(subject) or UserBaseline()

    def learning(self, at: datetime) -> bool:
        """Whether ``at`` is inside the learning period."""
        started = self._state.started
        return started is None or at.timestamp() < started + self._options.learning.total_seconds()

    def sources(self) -> dict[tuple[str, str], datetime]:
        """Last arrival per (log name, category)."""
        return {key: from_epoch(ts) for key, ts in self._state.sources.items()}


# A rule as the dispatch table holds it: the rule, its evaluate, its context, its exceptions.
_Target = tuple[
    Rule[Any],
    Callable[[Event, RuleContext], Iterable[Finding]],
    _Context,
    Callable[[Event], bool] | None,
]
# Per kind of event, the rules that read it: for events within the lateness, and for later ones
# (windowed rules skip those: their windows are gone).
_Targets = tuple[list[_Target], list[_Target]]
# Kinds are few (log sets x results x operations); the cap guards against free-text operations.
_MAX_KINDS = 10_000


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
        self._contexts = {r.meta.id: _Context(r.meta.id, self._state, options) for r in rules}
        self._dispatch: dict[tuple[Any, ...], _Targets] = {}
        self._sessions = Sessions(db if options.persist else None)
        # Alerts of the current batch; in memory only when not persisting (replays).
        self._pending: dict[str, Alert] = {}
        self._created: set[str] = set()
        self._memory_alerts: dict[str, Alert] = {}
        # Alerts the current batch withdrew (a late event showed them untrue), by dedup key.
        self._withdrawn: dict[str, Alert] = {}
        # The alerts the last ``process`` or ``tick`` withdrew, as last stored: for callers
        # keeping copies and for the notifier's follow-ups to whoever got them.
        self.withdrawn_alerts: list[Alert] = []
        # The alerts that opened an investigation in the last process/tick (alert id ->
        # investigation id), for notification targets set per investigation.
        self.opened_investigations: dict[str, str] = {}
        self._lock = threading.Lock()
        # Per user, the notables (id -> event time) that alerts about the user list: kept here,
        # as nearly every batch asks and notables are few.
        self._notables: dict[str, dict[str, datetime]] = {}
        if options.persist:
            self._state.load(self.db)
            for row in self.db.rows(
                "SELECT id, user, last_event_time FROM alerts WHERE notable = 1"
            ):
                mine = self._notables.setdefault(str(row["user"]), {})
                mine[str(row["id"])] = from_epoch(float(row["last_event_time"]))

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
            ids = {r.meta.id for r in rules}
            gone = {wkey for wkey in self._state.windows if wkey[0] not in ids}
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
            self.rules = list(rules)
            self._exceptions = {
                rule_id: exc for rule_id, exc in (exceptions or {}).items() if not exc.empty()
            }
            self._contexts = {
                rule_id: self._contexts.get(rule_id) or _Context(rule_id, self._state, self.options)
                for rule_id in ids
            }
            self._dispatch.clear()

    def process(self, events: Sequence[Event]) -> list[Alert]:
        """Run every enabled rule over ``events``; the alerts created or changed, new ones first.

        Thread-safe: collectors of several sources may share one engine.
        """
        with self._lock:
            return self._process(events)

    def _process(self, events: Sequence[Event]) -> list[Alert]:
        state = self._state
        lateness = self.options.lateness.total_seconds()
        ceiling = time.time() + _FUTURE_SLACK
        dispatch = self._dispatch
        arrivals: dict[tuple[str, str], datetime] = {}
        watermark = state.watermark
        for event in events:
            ts = event.timestamp.timestamp()
            if ts > watermark:
                watermark = state.watermark = min(ts, max(ceiling, watermark))
            if event.received_time is not None:
                source = (event.log_name, event.category or "")
                seen = arrivals.get(source)
                if seen is None or event.received_time > seen:
                    arrivals[source] = event.received_time
            late = ts < watermark - lateness
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
            # targets[False] holds every rule reading this kind, targets[True] the unwindowed.
            for rule, evaluate, ctx, excepted in targets[late]:
                try:
                    # An excepted event raises nothing, but what it taught a baseline may still
                    # show a later finding untrue (or now true): the rule corrects those.
                    findings = (
                        rule.correct(event, ctx)
                        if excepted is not None and excepted(event)
                        else evaluate(event, ctx)
                    )
                    for finding in findings:
                        self._fold(rule, finding)
                except Exception as exc:  # noqa: BLE001 - one failing rule must not stop the others
                    self._failed(rule, exc)
            if result == "SUCCESS":
                if event.log_set in _AUTH:
                    self._observe(event, ts)
                # Data-plane first sightings and the tenant's sign-in networks (``dataplane``).
                feed(state, event, ts, self._horizon)
        for source, received in arrivals.items():
            self._saw_source(source, received.timestamp())
        if state.watermark - state.pruned_at >= _PRUNE_EVERY:
            self._prune()
        changed = self._commit()
        # Counted once committed, so a reader seeing the count also sees the alerts.
        self.stats.events += len(events)
        return changed

    def _targets(self, kind: EventKind) -> _Targets:
        if len(self._dispatch) >= _MAX_KINDS:
            self._dispatch.clear()
        on_time: list[_Target] = []
        for rule in self.rules:
            if rule.reads(kind):
                rule_exceptions = self._exceptions.get(rule.meta.id)
                excepted = rule_exceptions.matches if rule_exceptions is not None else None
                on_time.append((rule, rule.evaluate, self._contexts[rule.meta.id], excepted))
        targets = (on_time, [t for t in on_time if not t[0].meta.windowed])
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
                    self._fold(rule, finding)
            except Exception as exc:  # noqa: BLE001 - one failing rule must not stop the others
                self._failed(rule, exc)
        return self._commit()

    def _failed(self, rule: Rule[Any], exc: Exception) -> None:
        rule_id = rule.meta.id
        self.stats.rule_errors[rule_id] = self.stats.rule_errors.get(rule_id, 0) + 1
        self.stats.last_rule_error[rule_id] = f"{type(exc).__name__}: {exc}"
        log.warning("rule %s failed: %s", rule_id, exc)

    def _fold(self, rule: Rule[Any], finding: Finding) -> None:
        meta = rule.meta
        if finding.stable_key:
            key = f"{meta.id}|{finding.entity}"
            if finding.retract:
                self._retract(key, finding.evidence, session=False)
            else:
                self._fold_into(key, rule, finding, session=False)
            return
        # The alerts of this rule and entity within its dedup window of the finding (see
        # ``sessions``): it joins them, under the key of the bucket their first event is in.
        prefix = session_prefix(meta.id, finding.entity)
        width = rule.config.dedup_minutes * 60.0
        times = [ref.timestamp.timestamp() for ref in finding.evidence] or [finding.at.timestamp()]
        touching = self._sessions.touching(prefix, min(times), max(times), width)
        if finding.retract:
            for key in touching:
                self._retract(key, finding.evidence)
            return
        joined = [alert for alert in map(self._lookup, touching) if alert is not None]
        first = min([*times, *(a.first_event_time.timestamp() for a in joined)])
        key = f"{prefix}{int(first // width)}"
        self._fold_into(key, rule, finding)
        for other in joined:
            if other.dedup_key != key:
                self._absorb(key, rule, other)

    def _absorb(self, key: str, rule: Rule[Any], other: Alert) -> None:
        """Fold the alert ``other`` into the alert ``key`` of the same rule and entity."""
        context = {k: v for k, v in other.context.items() if k != MERGED_INTO}
        as_finding = Finding(
            entity="",
            title=other.title,
            at=other.first_event_time,
            evidence=other.evidence,
            user=other.user,
            source_ip=other.source_ip,
            severity=other.severity,
            baseline=other.baseline,
            context=context,
        )
        self._fold_into(key, rule, as_finding, (other.first_event_time, other.last_event_time))
        gone = other.dedup_key
        self._pending.pop(gone, None)
        self._sessions.drop(gone)
        if gone in self._created:
            self._created.discard(gone)
        else:
            # Receivers of the merged alert are told where it went (notify's follow-up).
            other.context[MERGED_INTO] = alert_id(key)
            self._withdrawn[gone] = other

    def _fold_into(
        self,
        key: str,
        rule: Rule[Any],
        finding: Finding,
        span: tuple[datetime, datetime] | None = None,
        *,
        session: bool = True,
    ) -> None:
        meta = rule.meta
        times = [ref.timestamp for ref in finding.evidence] or [finding.at]
        if span is not None:
            # An absorbed alert's evidence is capped: its span says where it really lies.
            times += span
        severity = finding.severity or meta.severity
        alert = self._lookup(key)
        if alert is None:
            alert = Alert(
                id=alert_id(key),
                dedup_key=key,
                rule_id=meta.id,
                title=finding.title,
                severity=severity,
                notable=meta.notable,
                technique=meta.technique,
                runbook=meta.runbook,
                first_event_time=min(times),
                last_event_time=max(times),
                evidence=merge_evidence([], list(finding.evidence)),
                user=finding.user,
                source_ip=finding.source_ip,
                baseline=finding.baseline,
                context=dict(finding.context),
            )
            gone = self._withdrawn.pop(key, None)
            if gone is None:
                self._created.add(key)
            else:
                # Withdrawn and found again in one batch: an update, never notified twice.
                alert.revision = gone.revision + 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))
            return
        # What changes is worked out field by field: a loud rule's alert takes a finding per
        # event, and encoding it twice to compare cost more than the rest of the fold.
        evidence = merge_evidence(alert.evidence, list(finding.evidence))
        first = min(alert.first_event_time, *times)
        last = max(alert.last_event_time, *times)
        context = merge_context(alert.context, finding.context)
        baseline = alert.baseline or finding.baseline
        raised = severity.rank > alert.severity.rank
        if (
            raised
            or evidence != alert.evidence
            or first != alert.first_event_time
            or last != alert.last_event_time
            or baseline != alert.baseline
            or context != alert.context
        ):
            alert.evidence, alert.context, alert.baseline = evidence, context, baseline
            alert.first_event_time, alert.last_event_time = first, last
            if raised:
                alert.severity, alert.title = severity, finding.title
            if key not in self._pending:
                alert.revision += 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))

    def _retract(self, key: str, evidence: Sequence[EventRef], *, session: bool = True) -> None:
        alert = self._lookup(key)
        if alert is None:
            return
        drop = set(evidence)
        kept = [ref for ref in alert.evidence if ref not in drop]
        if len(kept) == len(alert.evidence):
            return
        if kept:
            alert.evidence = kept
            alert.first_event_time = kept[0].timestamp
            alert.last_event_time = max(ref.timestamp for ref in kept)
            if key not in self._pending:
                alert.revision += 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))
        else:
            self._pending.pop(key, None)
            if session:
                self._sessions.drop(key)
            if key in self._created:
                self._created.discard(key)
            else:
                self._withdrawn[key] = alert

    def _lookup(self, key: str) -> Alert | None:
        alert = self._pending.get(key)
        if alert is not None:
            return alert
        if key in self._withdrawn:
            return None
        if not self.options.persist:
            return self._memory_alerts.get(key)
        return self.alerts.by_dedup_key(key)

    def _link_notables(self) -> None:
        """Work out again the notables of alerts about users whose alerts or notables changed."""
        pending, withdrawn, known = self._pending, self._withdrawn, self._notables
        moved = [a for a in (*pending.values(), *withdrawn.values()) if a.notable and a.user]
        # Per user, the earliest time a notable left or landed on: alerts ending before it keep
        # their lists. A notable moves later too, when later events join it (a content rule's).
        since: dict[str, datetime] = {}
        for notable in moved:
            user = notable.user or ""
            mine = known.setdefault(user, {})
            left = mine.get(notable.id, notable.last_event_time)
            if notable.dedup_key in withdrawn:
                mine.pop(notable.id, None)
            else:
                mine[notable.id] = notable.last_event_time
            earliest = min(left, notable.last_event_time)
            since[user] = min(since.get(user, earliest), earliest)
        users = {a.user for a in pending.values() if a.user and not a.notable}
        users |= {a.user for a in moved if a.user}
        for user in sorted(users):
            alerts = {a.dedup_key: a for a in self._stored_alerts(user, since.get(user))}
            alerts.update((k, a) for k, a in pending.items() if a.user == user and not a.notable)
            current = [a for k, a in alerts.items() if k not in withdrawn]
            for alert in relink(current, known.get(user, {})):
                if alert.dedup_key not in pending:
                    alert.revision += 1
                    pending[alert.dedup_key] = alert

    def _stored_alerts(self, user: str, since: datetime | None) -> list[Alert]:
        """Stored alerts (not notables) of ``user`` ending at or after ``since`` (None: none)."""
        if since is None:
            return []
        if not self.options.persist:
            return [
                a
                for a in self._memory_alerts.values()
                if a.user == user and not a.notable and a.last_event_time >= since
            ]
        return self.alerts.find(AlertFilter(user=user, notable=False, since=since, limit=10_000))

    def _observe(self, event: Event, ts: float) -> None:
        if event.user:
            subject = event.user
        elif event.application_id:
            subject = f"sp:{event.application_id}"
        else:
            return
        baseline = self._state.baselines.get(subject)
        if baseline is None:
            baseline = self._state.baselines[subject] = UserBaseline()
        observe, horizon = baseline.observe, self._horizon
        country, ip = event.geoip_country_code, event.source_ip
        if country:
            observe("country", country, ts, horizon)
        if ip:
            observe("ip", ip, ts, horizon)
        asn = event.geoip_organization or (ip and network_of(ip))
        if asn:
            observe("asn", asn, ts, horizon)
        if event.device_id:
            observe("device", event.device_id, ts, horizon)
        if event.application:
            observe("app", event.application, ts, horizon)
        # The timeline keeps interactive sign-ins; token refreshes would crowd them out.
        if event.user and event.log_set == LogSet.INGRESS_AUTHENTICATION:
            baseline.remember(
                SignIn(
                    ts=ts,
                    source_ip=event.source_ip,
                    country=event.geoip_country_code,
                    application=event.application,
                    ref=EventRef.of(event),
                )
            )
        self._state.dirty_baselines[subject] = None

    def _saw_source(self, key: tuple[str, str], ts: float) -> None:
        if ts > self._state.sources.get(key, 0.0):
            self._state.sources[key] = ts
            self._state.dirty_sources.add(key)

    def _prune(self) -> None:
        state = self._state
        state.pruned_at = state.watermark
        lateness = self.options.lateness.total_seconds()
        retention = {r.meta.id: r.retention().total_seconds() for r in self.rules}
        # Every window of a rule is cut at the same time, so one DELETE per rule follows it.
        for wkey, window in list(state.windows.items()):
            before = state.watermark - lateness - retention.get(wkey[0], 0.0)
            if window.prune(before):
                state.cuts[wkey[0]] = before
            if not window:
                del state.windows[wkey]
        # Baselines span 90 days: forgetting their oldest values once a day is plenty.
        if state.watermark - state.baselines_pruned_at < 86400.0:
            return
        state.baselines_pruned_at = state.watermark
        # Values are kept two latenesses beyond the horizon: late events, and rules that look
        # only at what has surely arrived (a lateness back), still find all they ask about.
        horizon = (
            state.watermark
            - self.options.baseline_horizon.total_seconds()
            - 2 * self.options.lateness.total_seconds()
        )
        for subject, baseline in list(state.baselines.items()):
            if baseline.prune(horizon):
                state.dirty_baselines[subject] = None
                # Networks and users come and go: one left with nothing is deleted (saving a
                # dirty subject that is gone deletes its row).
                if baseline.empty():
                    del state.baselines[subject]

    def _commit(self) -> list[Alert]:
        self._link_notables()
        created = [self._pending[k] for k in sorted(self._created)]
        changed = created + [a for k, a in sorted(self._pending.items()) if k not in self._created]
        withdrawn = self._withdrawn
        self.withdrawn_alerts = list(withdrawn.values())
        if self.options.persist:
            self._save(changed, withdrawn=list(withdrawn))
        else:
            self._memory_alerts.update(self._pending)
            for key in withdrawn:
                self._memory_alerts.pop(key, None)
            self._state.forget_changes()
        withdrawn.clear()
        self._pending.clear()
        self._created.clear()
        return changed

    def close(self) -> None:
        """Save everything still pending (baselines included) and close the database."""
        with self._lock:
            if self.options.persist:
                self._save([], flush_baselines=True)
            self.db.close()

    def _save(
        self, alerts: list[Alert], *, flush_baselines: bool = False, withdrawn: Sequence[str] = ()
    ) -> None:
        now = time.time()
        every = None if flush_baselines else self.options.baseline_save_interval.total_seconds()
        with self.db.transaction() as conn:
            self._state.save(conn, baselines_every=every)
            for alert in alerts:
                self.alerts.save(conn, alert, now)
            # A withdrawn alert someone already triaged stays, with its last evidence.
            conn.executemany(
                "DELETE FROM alerts WHERE dedup_key = ? AND status = 'open' AND assignee IS NULL "
                "AND disposition IS NULL AND id NOT IN (SELECT alert_id FROM alert_history)",
                [(key,) for key in withdrawn],
            )
            release_alerts(conn, [alert_id(key) for key in withdrawn])
            window = self.options.investigation_window.total_seconds()
            self.opened_investigations = group_alerts(conn, alerts, window, now)


def _span(alert: Alert) -> Span:
    return (alert.first_event_time.timestamp(), alert.last_event_time.timestamp())
