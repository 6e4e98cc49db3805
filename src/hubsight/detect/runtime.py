"""Opening the detection engine of a data directory, for the collector, the CLI and the API."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Rule
from hubsight.detect.custom import Searcher, build_custom_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions, tune_gc
from hubsight.detect.generation import settings_generation
from hubsight.detect.notify import Notifier
from hubsight.detect.ruleset import RuleSet, build_ruleset, rules_dir_default
from hubsight.detect.settings import CONFIG_NAME, DetectConfig, SettingsStore
from hubsight.detect.sigma import load_sigma_rules
from hubsight.detect.targets import Configured, TargetStore, configured
from hubsight.errors import HubsightError
from hubsight.metrics import Metrics
from hubsight.parsing.event import Event
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


def open_engine(request: EngineRequest) -> DetectionEngine:
    """The engine of a data directory; a backtest keeps its state and alerts in memory.

    Tunes the process's garbage collector for it (``tune_gc``).
    """
    tune_gc()
    config = DetectConfig.load(request.data_dir)
    settings_db = DetectDB.in_dir(request.data_dir)
    ruleset = load_ruleset(request.data_dir, settings_db, request.rules_dir, request.searcher)
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
    """

    def __init__(
        self,
        engine: DetectionEngine,
        notifier: Notifier,
        watch: SettingsWatch | None = None,
        *,
        refresh_s: float = 1.0,
        seen: Fingerprint | None = None,
    ) -> None:
        self.engine = engine
        self.notifier = notifier
        self._watch = watch
        self._refresh_s = refresh_s
        # What the engine was built from; taken before building, so no change slips between.
        self._seen = seen or (watch.fingerprint(engine.db) if watch is not None else None)
        self._checked = time.monotonic()
        self._refreshing = threading.Lock()
        self._detecting = threading.Lock()
        # Set by ``hubsight run`` to count alerts and failed notifications.
        self.metrics: Metrics | None = None

    @classmethod
    def open(
        cls, data_dir: Path, searcher: Searcher | None = None, *, refresh_s: float = 1.0
    ) -> Detection:
        """The live detection of a data directory; custom LEQL alerts run with ``searcher``."""
        watch = SettingsWatch(data_dir, searcher=searcher)
        db = DetectDB.in_dir(data_dir)
        seen = watch.fingerprint(db)
        db.close()
        engine = open_engine(EngineRequest(data_dir=data_dir, searcher=searcher))
        return cls(engine, watch.notifier(engine.db), watch, refresh_s=refresh_s, seen=seen)

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
        """Detect on a batch that was just stored; notify the new alerts and the withdrawn ones."""
        self.refresh()
        return self._notified(lambda: self.engine.process(events))

    def tick(self, now: datetime) -> list[Alert]:
        """Check for silent sources; call about once a minute."""
        self.refresh()
        return self._notified(lambda: self.engine.tick(now))

    def _notified(self, detect: Callable[[], list[Alert]]) -> list[Alert]:
        # The engine keeps only its last call's withdrawals: they are read before another
        # collector's batch replaces them (the engine runs one batch at a time anyway).
        with self._detecting:
            alerts = detect()
            withdrawn = self.engine.withdrawn_alerts
            opened = self.engine.opened_investigations
        report = self.notifier.send(alerts, withdrawn, opened)
        if self.metrics is not None:
            self.metrics.alerted(a.rule_id for a in alerts if a.revision == 1 and not a.notable)
            for channel in report.failed:
                self.metrics.notification_failures.labels(channel).inc()
        return alerts

    def close(self) -> None:
        """Save pending state and close."""
        self.engine.close()
