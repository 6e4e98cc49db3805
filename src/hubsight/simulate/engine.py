"""The simulation loop: background and scenarios in event time, delivered late and batched the way
Azure Monitor delivers them, with ground truth for every planted record.

Time runs in steps. Each step draws the records that happen in it; each record is delivered after
Azure's processing time plus a delivery delay (minutes, sometimes hours for Entra), so records
arrive out of order as they do from Azure. Delivered records wait in a per-category batch that is
sent as one ``{"records": [...]}`` message when it is full, near 1 MB, or old enough.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.errors import ConfigError
from hubsight.simulate.background import CATEGORIES, Background
from hubsight.simulate.draft import Context, Draft, poisson
from hubsight.simulate.planting import Planted, prime
from hubsight.simulate.scenarios import SCENARIOS
from hubsight.simulate.tenant import build_tenant
from hubsight.sources.base import Message

# Event Hubs refuses events over 1 MiB; stay clearly under it with the envelope included.
MAX_MESSAGE_BYTES = 1_000_000
_ENTRA = frozenset(
    {
        "SignInLogs",
        "NonInteractiveUserSignInLogs",
        "ServicePrincipalSignInLogs",
        "MicrosoftServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "ADFSSignInLogs",
        "AuditLogs",
        "ProvisioningLogs",
        "RiskyUsers",
        "UserRiskEvents",
        "MicrosoftGraphActivityLogs",
    }
)
# A live run starts this far in the past so that its first minutes are not empty: Azure delivers
# records minutes after they happen.
_WARMUP = timedelta(minutes=10)

Clock = Callable[[], datetime]
TruthSink = Callable[[dict[str, Any]], None]


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """What to simulate; ``start=None`` means live (now, paced to the wall clock).

    ``rate`` is the whole tenant's records per second, averaged over a week (as ``hubsight
    simulate --rate`` says). ``categories`` keeps only those categories: each comes at the rate
    it has in that tenant (its share of ``rate``; per person for what people do at a rate of
    their own), so choosing fewer gives fewer records, not ``rate`` between the chosen ones.
    ``count`` counts the records generated (of the chosen categories).
    """

    seed: int = 0
    rate: float = 20.0
    users: int = 200
    domain: str = "contoso.com"
    scenarios: tuple[str, ...] = ()
    start: datetime | None = None
    duration: timedelta | None = None
    count: int | None = None
    # Without a duration or a count, scenarios repeat in turn at this interval.
    scenario_interval: timedelta = timedelta(minutes=5)
    # Background alone this long before the first scenario (with a duration, the scenarios are
    # spread over the rest): the tenant's routine, for baselines to learn, and nothing planted.
    quiet: timedelta = timedelta(0)
    categories: tuple[str, ...] | None = None
    max_records_per_message: int = 100
    flush_after: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        unknown = [name for name in self.scenarios if name not in SCENARIOS]
        if unknown:
            raise ConfigError(
                f"unknown scenario {unknown[0]!r}",
                hint=f"choose from: {', '.join(SCENARIOS)} (or 'all')",
            )
        bad = [c for c in self.categories or () if c not in CATEGORIES]
        if bad:
            raise ConfigError(f"unknown category {bad[0]!r}", hint=f"choose from: {CATEGORIES}")
        if not self.rate > 0:
            raise ConfigError(f"the rate must be positive, not {self.rate}")
        if self.users < 10:
            raise ConfigError(f"a tenant needs at least 10 users, not {self.users}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"the count must be at least 1, not {self.count}")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ConfigError("the duration must be positive")
        if self.quiet < timedelta(0):
            raise ConfigError("the quiet lead-in cannot be negative")
        if self.quiet and self.count is not None:
            raise ConfigError(
                "a quiet lead-in is a time: it needs a duration or a live run, not a count"
            )
        if self.quiet and self.duration is not None and self.quiet >= self.duration:
            raise ConfigError(
                f"the quiet lead-in ({self.quiet}) must be shorter than the duration "
                f"({self.duration}), or no scenario would be planted"
            )
        if self.start is not None and self.start.tzinfo is None:
            raise ConfigError("the start time must carry a time zone (for example a trailing Z)")


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One Event Hub message: its body, its category and when Azure would have enqueued it."""

    sequence: int
    body: bytes
    category: str
    enqueued_time: datetime
    records: int

    def as_message(self, topic: str = "sim") -> Message:
        """The message as a source hands it on: partition 0, received the moment it was enqueued."""
        return Message(
            topic=topic,
            partition=0,
            offset=self.sequence,
            value=self.body,
            received_time=self.enqueued_time,
            enqueued_time=self.enqueued_time,
        )


@dataclass(slots=True)
class _Batch:
    opened: datetime
    parts: list[bytes] = field(default_factory=list)
    tags: list[tuple[int | None, str]] = field(default_factory=list)
    size: int = 0


@dataclass(slots=True)
class _Instance:
    plant: Planted
    end: datetime
    remaining: int
    refs: list[dict[str, Any]] = field(default_factory=list)


class Simulation:
    """A seeded tenant generating Event Hub messages; see the package docstring for use."""

    def __init__(
        self,
        config: SimulationConfig,
        *,
        truth: TruthSink | None = None,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - repeatable, not secret
        self.tenant = build_tenant(self.rng, users=config.users, domain=config.domain)
        self.ctx = Context(self.rng, self.tenant)
        self.background = Background(self.ctx)
        self._truth = truth
        self._clock = clock
        self._sleep = sleep
        self._encode = msgspec.json.Encoder().encode
        # Records wait for delivery already encoded: bytes are cheap to keep and, unlike dicts,
        # invisible to the garbage collector, which otherwise spends half the run scanning them.
        self._heap: list[tuple[datetime, int, str, str, bytes, int | None]] = []
        self._pushed = 0
        self._batches: dict[str, _Batch] = {}
        self._instances: list[_Instance] = []
        self._sequence = 0
        self.generated = 0

    def messages(self) -> Iterator[SimMessage]:
        """Generate messages until the duration or count is reached (forever when neither)."""
        config = self.config
        live = config.start is None
        begin = (config.start or self._clock() - _WARMUP).astimezone(UTC)
        now = begin
        step = timedelta(seconds=1.0 if live else max(1.0, min(60.0, 40.0 / config.rate)))
        planted = 0
        while not self._finished(begin, now):
            planted = self._plant_due(begin, now, planted)
            self._generate(now, step)
            now += step
            yield from self._deliver(now)
            if live:
                wait = (now - self._clock()).total_seconds()
                if wait > 0:
                    self._sleep(wait)
        yield from self._deliver(None)

    def _finished(self, begin: datetime, now: datetime) -> bool:
        if self.config.count is not None:
            return self.generated >= self.config.count
        if self.config.duration is not None:
            return now >= begin + self.config.duration
        return False

    def _progress(self, start: datetime, now: datetime) -> float | None:
        """How far through the time for scenarios (from ``start``, after the quiet lead-in)."""
        config = self.config
        if config.count is not None:
            return self.generated / config.count
        if config.duration is not None:
            return (now - start) / (config.duration - config.quiet)
        return None

    def _plant_due(self, begin: datetime, now: datetime, planted: int) -> int:
        names = self.config.scenarios
        start = begin + self.config.quiet
        if not names or now < start:
            return planted
        progress = self._progress(start, now)
        while True:
            if progress is None:
                due = now >= start + self.config.scenario_interval * (planted + 1)
            else:
                due = planted < len(names) and progress >= (planted + 1) / (len(names) + 1)
            if not due:
                return planted
            plant = SCENARIOS[names[planted % len(names)]](self.ctx, now)
            index = len(self._instances)
            self._instances.append(_Instance(plant, plant.end, len(plant.drafts)))
            for draft in plant.drafts:
                self._push(draft, index)
            for draft in prime(self.ctx, plant):
                self._push(draft, None)
            # The records now wait in the heap; a live run plants forever, so keep no copies.
            plant.drafts.clear()
            planted += 1

    def _generate(self, now: datetime, step: timedelta) -> None:
        rng = self.rng
        categories, rates, multiplier = self.background.weights(now, self.config.categories)
        expected = self.config.rate * multiplier * step.total_seconds()
        seconds = step.total_seconds()
        draws = poisson(rng, expected)
        # Only ``PERSONAL`` categories chosen: nothing to draw (and no weights to draw by).
        for category in rng.choices(categories, weights=rates, k=draws) if draws else ():
            if self.config.count is not None and self.generated >= self.config.count:
                return
            when = now + timedelta(seconds=rng.uniform(0, seconds))
            for draft in self.background.draw(category, when):
                self._push(draft, None)
        for draft in self.background.personal(now, step, self.config.categories):
            if self.config.count is not None and self.generated >= self.config.count:
                return
            self._push(draft, None)

    def _push(self, draft: Draft, instance: int | None) -> None:
        rng = self.rng
        if draft.category in _ENTRA:
            # Entra delivers within minutes, but a few records come hours late.
            delay = rng.uniform(20, 150) if rng.random() > 0.003 else rng.uniform(1200, 10800)
        elif draft.category == "SecurityAlert":
            delay = rng.uniform(10, 60)
        else:
            delay = rng.uniform(60, 240)
        delivered = draft.azure_time + timedelta(seconds=delay)
        self._pushed += 1
        self.generated += 1
        heapq.heappush(
            self._heap,
            (
                delivered,
                self._pushed,
                draft.category,
                draft.key,
                self._encode(draft.record),
                instance,
            ),
        )

    def _deliver(self, until: datetime | None) -> Iterator[SimMessage]:
        """Batch everything delivered by ``until`` (everything when None); send full or old
        batches."""
        heap = self._heap
        while heap and (until is None or heap[0][0] <= until):
            delivered, _, category, key, part, instance = heapq.heappop(heap)
            batch = self._batches.get(category)
            if batch is not None and (
                len(batch.parts) >= self.config.max_records_per_message
                or batch.size + len(part) + 16 > MAX_MESSAGE_BYTES
            ):
                yield self._send(category, batch, delivered)
                batch = None
            if batch is None:
                batch = self._batches[category] = _Batch(delivered)
            batch.parts.append(part)
            batch.tags.append((instance, key))
            batch.size += len(part) + 1
        for category in sorted(self._batches):
            batch = self._batches[category]
            if until is None or batch.opened + self.config.flush_after <= until:
                yield self._send(category, batch, until or batch.opened + self.config.flush_after)

    def _send(self, category: str, batch: _Batch, enqueued: datetime) -> SimMessage:
        del self._batches[category]
        body = b'{"records":[' + b",".join(batch.parts) + b"]}"
        message = SimMessage(self._sequence, body, category, enqueued, len(batch.parts))
        if self._truth is not None:
            for index, (instance, key) in enumerate(batch.tags):
                if instance is not None:
                    self._record_truth(self._truth, instance, category, key, index)
        self._sequence += 1
        return message

    def _record_truth(
        self, truth: TruthSink, instance: int, category: str, key: str, index: int
    ) -> None:
        entry = self._instances[instance]
        entry.refs.append(
            {"message": self._sequence, "index": index, "category": category, "key": key}
        )
        entry.remaining -= 1
        if entry.remaining == 0:
            plant = entry.plant
            refs, entry.refs = entry.refs, []
            truth(
                {
                    "scenario": plant.name,
                    "instance": instance,
                    "description": plant.description,
                    "start": plant.start.isoformat(),
                    "end": entry.end.isoformat(),
                    "user": plant.user,
                    "source_ips": plant.source_ips,
                    "expect": plant.expect,
                    "records": refs,
                }
            )
