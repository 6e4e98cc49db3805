"""The service's Prometheus metrics, served at ``/metrics``.

One ``Metrics`` per running service, in a registry of its own (no process-wide state): the
collectors count what they consume and store, the API times searches, detection counts alerts
per rule and failed notifications per channel. Lag per partition is read from the sources'
health when scraped, and so are the notifications due and memory: the embedded engine's, the C
library's malloc's and the detection state's size (README, "Memory", says what each part is).
Names follow Prometheus' conventions (``_total`` counters, ``_seconds``, ``_bytes``).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hubsight import allocator
from hubsight.errors import HubsightError
from hubsight.parsing.event import Event, LogSet
from hubsight.sources.base import Message, PartitionLag
from hubsight.store.engine_memory import EngineMemory

if TYPE_CHECKING:
    from hubsight.detect.state import StateSize

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Store writes take milliseconds to seconds; searches and detection up to a minute.
_WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

LagReader = Callable[[], dict[str, list[PartitionLag]]]
EngineReader = Callable[[], EngineMemory | None]
StateReader = Callable[[], "StateSize"]


class _Lag(Collector):
    """Lag per partition, read from the sources' health at each scrape."""

    def __init__(self, read: LagReader) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "hubsight_source_lag_messages",
            "Messages of a partition not yet committed (high watermark - committed offset)",
            labels=["source", "topic", "partition"],
        )
        for source, lags in sorted(self._read().items()):
            for lag in lags:
                if lag.lag is not None:
                    family.add_metric([source, lag.topic, str(lag.partition)], lag.lag)
        yield family


class _Due(Collector):
    """The notifications due (recorded, not yet sent), read from the outbox at each scrape."""

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            due = self._read()
        except HubsightError as exc:
            # A scrape still answers with everything else.
            log.warning("the notifications due were not read: %s", exc)
            return
        yield GaugeMetricFamily(
            "hubsight_notifications_due",
            "Notifications recorded with their alerts and not yet sent: the delivery thread "
            "sends them; a figure that stays up means a receiver is slow or failing",
            value=due,
        )


class _Memory(Collector):
    """The process's memory by part, read at each scrape: the engine's (when it runs in this
    process), malloc's, and the detection state's size (when a reader is given)."""

    def __init__(self, engine: EngineReader, state: StateReader | None) -> None:
        self._engine = engine
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _engine_families(self._engine)
        malloc = GaugeMetricFamily(
            "hubsight_malloc_bytes",
            "The C library's malloc (not the engine's, nor Python's small objects): in use, "
            "and free but kept",
            labels=["state"],
        )
        figures = allocator.figures()
        if figures is not None:
            malloc.add_metric(["in_use"], figures.in_use)
            malloc.add_metric(["free"], figures.free)
        yield malloc
        if self._state is not None:
            size = self._state()
            for name, what, value in (
                ("windows", "Detection windows held", size.windows),
                ("window_entries", "Events held in detection windows", size.entries),
                ("baselines", "Per-user sign-in baselines held", size.baselines),
            ):
                yield GaugeMetricFamily(f"hubsight_detection_{name}", what, value=value)


def _engine_families(read: EngineReader) -> Iterator[GaugeMetricFamily]:
    parts = GaugeMetricFamily(
        "hubsight_engine_memory_bytes",
        "The embedded ClickHouse engine's memory: its allocator's allocated and resident, "
        "its tracked memory, merges' share of it, primary keys held by parts",
        labels=["part"],
    )
    caches = GaugeMetricFamily(
        "hubsight_engine_cache_bytes", "What each of the engine's caches holds", labels=["cache"]
    )
    try:
        memory = read()
    except HubsightError as exc:
        # A scrape still answers with everything else; the engine's figures are left out.
        log.warning("the engine's memory figures were not read: %s", exc)
        memory = None
    if memory is not None:
        for part, value in (
            ("allocated", memory.allocated),
            ("resident", memory.resident),
            ("tracked", memory.tracked),
            ("merges", memory.merges),
            ("primary_keys", memory.primary_keys),
        ):
            if value is not None:
                parts.add_metric([part], value)
        for cache, value in memory.caches.items():
            caches.add_metric([cache], value)
    yield parts
    yield caches


class Metrics:
    """Every metric hubsight exports, registered in ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_consumed = Counter(
            "hubsight_messages_consumed", "Messages read from a source", ["source"], registry=r
        )
        self.events_consumed = Counter(
            "hubsight_events_consumed",
            "Records parsed from a source's messages, by Azure category",
            ["source", "category"],
            registry=r,
        )
        self.events_stored = Counter(
            "hubsight_events_stored",
            "Events durably stored, by source and Azure category",
            ["source", "category"],
            registry=r,
        )
        self.events_unparsed = Counter(
            "hubsight_events_unparsed",
            "Records stored as Unparsed Data, by source and Azure category",
            ["source", "category"],
            registry=r,
        )
        self.events_repaired = Counter(
            "hubsight_events_repaired",
            "Records stored after repairing invalid JSON, by source and repair",
            ["source", "repair"],
            registry=r,
        )
        self.store_write_seconds = Histogram(
            "hubsight_store_write_seconds",
            "Time to store one batch durably",
            ["source"],
            buckets=_WRITE_BUCKETS,
            registry=r,
        )
        self.search_seconds = Histogram(
            "hubsight_search_seconds",
            "Time to answer one search",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.detection_delay_seconds = Histogram(
            "hubsight_detection_delay_seconds",
            "From a batch stored to its detections saved, notifications due recorded with them "
            "(the delivery thread sends those)",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.detection_behind = Gauge(
            "hubsight_detection_behind",
            "1 while stored events wait for detection to read them again (after a restart or a "
            "batch detection failed on), else 0",
            registry=r,
        )
        self.detection_caught_up = Counter(
            "hubsight_detection_caught_up_events",
            "Stored events detection processed by reading them again from the store",
            registry=r,
        )
        self.detection_catch_up_seconds = Histogram(
            "hubsight_detection_catch_up_seconds",
            "Time to read again and process what detection had not processed",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.alerts = Counter("hubsight_alerts", "New alerts raised, by rule", ["rule"], registry=r)
        self.notification_failures = Counter(
            "hubsight_notification_failures",
            "Notifications that failed after their retries (kept as dead letters), by channel",
            ["channel"],
            registry=r,
        )

    def watch_lag(self, read: LagReader) -> None:
        """Export the lag figures ``read`` returns per source at each scrape."""
        self.registry.register(_Lag(read))

    def watch_memory(self, engine: EngineReader, state: StateReader | None = None) -> None:
        """Export memory by part at each scrape: the engine's as ``engine`` reads it, malloc's,
        the detection state's size as ``state`` reads it, and the process's own figures
        (``process_resident_memory_bytes``, open files)."""
        self.registry.register(_Memory(engine, state))
        ProcessCollector(registry=self.registry)

    def watch_notifications(self, due: Callable[[], int]) -> None:
        """Export how many notifications are due, as ``due`` counts them at each scrape."""
        self.registry.register(_Due(due))

    def for_source(self, name: str) -> SourceMetrics:
        """The counters of one source."""
        return SourceMetrics(self, name)

    def alerted(self, rule_ids: Iterable[str]) -> None:
        """Count new alerts by rule."""
        for rule, count in Tally(rule_ids).items():
            self.alerts.labels(rule).inc(count)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    """What one collector counts."""

    metrics: Metrics
    source: str

    def consumed(self, messages: Sequence[Message], events: Sequence[Event]) -> None:
        """Messages read and the records parsed from them."""
        m = self.metrics
        m.messages_consumed.labels(self.source).inc(len(messages))
        for category, count in Tally(e.category for e in events).items():
            m.events_consumed.labels(self.source, category or "").inc(count)

    def stored(self, events: Sequence[Event], seconds: float) -> None:
        """A batch stored in ``seconds``: counts by category, unparsed and repaired ones."""
        m = self.metrics
        m.store_write_seconds.labels(self.source).observe(seconds)
        stored: Tally[str] = Tally()
        unparsed: Tally[str] = Tally()
        repaired: Tally[str] = Tally()
        for event in events:
            category = event.category or ""
            stored[category] += 1
            if event.log_set == LogSet.UNPARSED_DATA:
                unparsed[category] += 1
            if event.repairs:
                repaired.update(event.repairs)
        for category, count in stored.items():
            m.events_stored.labels(self.source, category).inc(count)
        for category, count in unparsed.items():
            m.events_unparsed.labels(self.source, category).inc(count)
        for repair, count in repaired.items():
            m.events_repaired.labels(self.source, repair).inc(count)

    def detected(self, seconds: float) -> None:
        """Detection of one stored batch took ``seconds`` (its notifications recorded, not sent)."""
        self.metrics.detection_delay_seconds.observe(seconds)
