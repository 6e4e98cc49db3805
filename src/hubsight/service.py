"""``hubsight run``: one collector per enabled source, the API, and health persisted for ``status``.

The catalog (SQLite) is the source of truth: the service compares it with what runs every second,
so a source added, changed, disabled or removed by the CLI or the API takes effect without a
restart. Only this process opens the ClickHouse directory; it holds ``run.lock`` meanwhile.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hubsight import allocator, mapped
from hubsight.collector import Collector, CollectorSettings, StoredHook
from hubsight.errors import ConfigError, StoreError
from hubsight.health import DetectionLag, SourceHealth, State
from hubsight.metrics import Metrics
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.pipeline import EmptyRegistry
from hubsight.sources.base import PartitionLag, SourceDriver
from hubsight.sources.config import SourceConfig
from hubsight.sources.registry import driver_for
from hubsight.store import retention
from hubsight.store.base import EventStore
from hubsight.store.catalog import Catalog
from hubsight.store.damage import DOCTOR_HINT, DamagedPart, damaged_parts
from hubsight.store.retention import Policy

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"
SOCKET_FILE = "hubsight.sock"


@contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory for this process; fail clearly if another ``run`` holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another `hubsight run` holds {data_dir}",
                hint="stop it first, or pass a different --data-dir",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def is_running(data_dir: Path) -> bool:
    """True while a ``hubsight run`` holds ``data_dir``."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@dataclass
class _Running:
    collector: Collector
    thread: threading.Thread
    stop: threading.Event
    version: int


@dataclass
class Service:
    """Runs the collectors of every enabled source over one store."""

    data_dir: Path
    store: EventStore
    catalog: Catalog
    # Which transport reads a source: the registry's, or a test's MemoryBroker.
    drivers: Callable[[SourceConfig], SourceDriver] = driver_for
    registry: ParserRegistry = field(default_factory=EmptyRegistry)
    settings: CollectorSettings = field(default_factory=CollectorSettings)
    on_stored: StoredHook | None = None
    # Called about once a minute with the time, for work that watches silence (detections) or
    # housekeeping; each job runs on its own, so one that fails does not skip the others.
    on_tick: Sequence[Callable[[datetime], object]] = ()
    # Per source name asked, how far detection is behind what it stored (absent: not behind).
    detection_lag: Callable[[Iterable[str]], Mapping[str, DetectionLag]] | None = None
    metrics: Metrics = field(default_factory=Metrics)
    health: dict[str, SourceHealth] = field(default_factory=dict)
    # When the serving loop last went round (monotonic): readiness checks that it still does.
    last_loop: float | None = None
    # Parts of the event store ClickHouse set aside as damaged, found when serving began.
    damaged_parts: list[DamagedPart] = field(default_factory=list)
    # The retention policy last given to the store.
    _retention: Policy | None = None
    _running: dict[str, _Running] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics.watch_lag(self.lags)

    def lags(self) -> dict[str, list[PartitionLag]]:
        """Lag per partition of every running source."""
        return {name: list(health.lag) for name, health in self.health.items()}

    def reconcile(self) -> None:
        """Start, restart or stop collectors so that they match the catalog."""
        sources = {config.name: config for config in self.catalog.all()}
        versions = self.catalog.versions()
        changed: set[str] = set()
        for name, running in list(self._running.items()):
            config = sources.get(name)
            if config is None or not config.enabled or versions.get(name) != running.version:
                self._stop(name)
                changed.add(name)
        for name in list(self.health):
            if name not in sources:
                del self.health[name]
        for name, config in sources.items():
            if not config.enabled:
                self.health.setdefault(name, SourceHealth(name)).set_state(State.DISABLED)
                continue
            if name in self._running:
                continue
            health = self.health.get(name)
            # Changed settings start from a clean slate: the old settings' error is not theirs.
            if health is None or health.state is State.DISABLED or name in changed:
                health = SourceHealth(name, events_stored=self._stored_count(name))
                self.health[name] = health
            health.set_state(State.STARTING)
            collector = Collector(
                config,
                self.drivers(config),
                self.store,
                health,
                self.registry,
                self.settings,
                self.on_stored,
                self.metrics.for_source(name),
            )
            stop = threading.Event()
            thread = threading.Thread(
                target=collector.run, args=(stop,), name=f"collector-{name}", daemon=True
            )
            thread.start()
            self._running[name] = _Running(collector, thread, stop, versions[name])
            log.info("collecting from %s", name)

    def _stored_count(self, log_name: str) -> int:
        rows = self.store.select(
            "SELECT count() AS n FROM events WHERE log_name = {name:String}", {"name": log_name}
        )
        return int(rows[0]["n"]) if rows else 0

    def _stop(self, name: str) -> None:
        running = self._running.pop(name)
        running.stop.set()
        running.thread.join()
        log.info("stopped collecting from %s", name)

    def apply_retention(self) -> None:
        """Give the store the catalog's retention policy when it changed (the CLI may change
        it at any time)."""
        policy = self.catalog.retention()
        if policy == self._retention:
            return
        self._retention = policy
        try:
            if retention.apply(self.store, policy):
                log.info(
                    "retention applied: %s", ", ".join(f"{k} {v} days" for k, v in policy.items())
                )
        except StoreError:
            log.exception("the event store refused the retention policy")

    def check_store(self) -> None:
        """Find the parts ClickHouse set aside as damaged when it opened the store; log each
        and save the list where ``hubsight status`` reads it."""
        try:
            self.damaged_parts = damaged_parts(self.store)
        except StoreError as exc:
            log.error("the event store's damaged parts could not be listed: %s", exc)
        for part in self.damaged_parts:
            log.warning("event store: %s; %s", part.summary(), DOCTOR_HINT)
        try:
            self.catalog.save_damaged_parts([p.as_json() for p in self.damaged_parts])
        except StoreError as exc:
            log.error("the damaged parts were not saved for `hubsight status`: %s", exc)

    def persist_health(self) -> None:
        """Write every source's health where ``hubsight status`` reads it, with how far
        detection is behind each."""
        if self.detection_lag is not None:
            lags = self.detection_lag(list(self.health))
            for name, health in self.health.items():
                health.set_detection(lags.get(name))
        self.catalog.save_health([h.snapshot() for h in self.health.values()])

    def serve(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Reconcile and persist health until ``stop``; then stop every collector cleanly."""
        self.check_store()
        next_tick = time.monotonic()
        # The catalog's disk full or its file unreadable: the collectors go on with the sources
        # they have, both steps are tried again next round, and each failure is logged once.
        failing: dict[str, str] = {}
        try:
            while not stop.is_set():
                self.last_loop = time.monotonic()
                try:
                    self.reconcile()
                    failing.pop("reconcile", None)
                except ConfigError:
                    log.exception("the catalog holds a source that cannot be used")
                except StoreError as exc:
                    _log_once(failing, "reconcile", exc)
                try:
                    self.persist_health()
                    self.apply_retention()
                    failing.pop("health and retention", None)
                except StoreError as exc:
                    _log_once(failing, "health and retention", exc)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + 60
                    self._tick()
                stop.wait(interval_s)
        finally:
            for name in list(self._running):
                self._stop(name)
            try:
                self.persist_health()
            except StoreError as exc:
                log.error("the sources' last health was not saved: %s", exc)

    def _tick(self) -> None:
        """The once-a-minute work: each periodic job in turn, then memory handed back."""
        now = datetime.now(UTC)
        for job in self.on_tick:
            try:
                job(now)
            except Exception:  # a failing job never stops collection, nor the jobs after it
                log.exception("the periodic job %s failed", getattr(job, "__qualname__", job))
        # What the last minute's batches, merges and searches freed goes back to the system
        # rather than staying with the arena of the thread that freed it (allocator.py).
        allocator.trim()
        # The engine library's pages used since the last tick are mapped again on their next
        # use; those used once (at start, by a rare query) leave resident memory (mapped.py).
        mapped.release()


def _log_once(failing: dict[str, str], step: str, exc: StoreError) -> None:
    if failing.get(step) != exc.message:
        log.error("the catalog cannot be used (%s): %s; %s", step, exc.message, exc.hint)
    failing[step] = exc.message
