"""Opening the detection engine of a data directory, for the collector, the CLI and the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Rule
from hubsight.detect.custom import Searcher, build_custom_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Notifier
from hubsight.detect.ruleset import RuleSet, build_ruleset, rules_dir_default
from hubsight.detect.settings import DetectConfig, SettingsStore
from hubsight.detect.sigma import load_sigma_rules
from hubsight.parsing.event import Event


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
    """The engine of a data directory; a backtest keeps its state and alerts in memory."""
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
        persist=request.persist,
    )
    return DetectionEngine(db, ruleset.rules, options=options, exceptions=ruleset.exceptions)


class Detection:
    """The engine and its notifier, as the collector uses them after each stored batch."""

    def __init__(self, engine: DetectionEngine, notifier: Notifier) -> None:
        self.engine = engine
        self.notifier = notifier

    @classmethod
    def open(cls, data_dir: Path, searcher: Searcher | None = None) -> Detection:
        """The live detection of a data directory; custom LEQL alerts run with ``searcher``."""
        engine = open_engine(EngineRequest(data_dir=data_dir, searcher=searcher))
        notifier = Notifier.from_config(DetectConfig.load(data_dir).notify, engine.db)
        return cls(engine, notifier)

    def on_stored(self, events: Sequence[Event]) -> list[Alert]:
        """Detect on a batch that was just stored and notify the new alerts."""
        alerts = self.engine.process(events)
        self.notifier.send(alerts)
        return alerts

    def tick(self, now: datetime) -> list[Alert]:
        """Check for silent sources; call about once a minute."""
        alerts = self.engine.tick(now)
        self.notifier.send(alerts)
        return alerts

    def close(self) -> None:
        """Save pending state and close."""
        self.engine.close()
