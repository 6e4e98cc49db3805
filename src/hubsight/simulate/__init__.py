"""A realistic simulated Azure tenant: Entra ID and Activity Log traffic as Event Hubs delivers it.

The tenant has users with home countries and devices, administrators, registered applications,
managed identities and Azure resources. Its background traffic covers every category hubsight
parses in realistic proportions with a daily and weekly rhythm, plus a few records a relay cut
short (``BROKEN``), which are the only ones that should land in Unparsed Data. Attack scenarios
chosen by name (``SCENARIOS``) are planted in it, each reported in a ground-truth entry naming
its records.

Python API::

    from hubsight.simulate import stream_messages, generate_messages

    # Live, paced to the wall clock: Event Hub message bodies ({"records": [...]}, <= 1 MB).
    for body in stream_messages(seed=1, rate=50, scenarios=["brute-force"]):
        producer.produce("insights-logs", body)

    # As fast as possible, for benchmarks: exactly 1,000 message bodies (of interactive
    # sign-ins alone: the ~8 % of a 50 records/s tenant's stream that they are).
    bodies = generate_messages(1_000, seed=1, categories=["SignInLogs"])

For full control (a fixed start, a duration or a count, ground truth) build a
``Simulation(SimulationConfig(...), truth=callback)`` and iterate ``messages()``: each
``SimMessage`` carries its body, category, sequence number and simulated enqueued time. The same
seed and start always produce the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from hubsight.simulate.background import BROKEN, CATEGORIES
from hubsight.simulate.engine import (
    MAX_MESSAGE_BYTES,
    SimMessage,
    Simulation,
    SimulationConfig,
)
from hubsight.simulate.scenarios import SCENARIOS

__all__ = [
    "BROKEN",
    "CATEGORIES",
    "MAX_MESSAGE_BYTES",
    "SCENARIOS",
    "SimMessage",
    "Simulation",
    "SimulationConfig",
    "generate_messages",
    "iter_messages",
    "stream_messages",
]

# Benchmarks start on a Monday morning so that people-driven categories are at full rate.
_BENCH_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def stream_messages(
    seed: int = 0,
    rate: float = 20.0,
    scenarios: Iterable[str] = (),
    *,
    users: int = 200,
) -> Iterator[bytes]:
    """Message bodies of a live tenant at ``rate`` records/s; scenarios repeat every 5 minutes."""
    config = SimulationConfig(seed=seed, rate=rate, users=users, scenarios=tuple(scenarios))
    for message in Simulation(config).messages():
        yield message.body


def generate_messages(
    count: int,
    *,
    seed: int = 0,
    categories: Iterable[str] | None = None,
    records_per_message: int = 100,
) -> list[bytes]:
    """Exactly ``count`` message bodies of background traffic, generated without pacing: a
    tenant of 50 records/s, or only its ``categories`` at the rate they have in it."""
    return list(
        iter_messages(
            count, seed=seed, categories=categories, records_per_message=records_per_message
        )
    )


def iter_messages(
    count: int,
    *,
    seed: int = 0,
    categories: Iterable[str] | None = None,
    records_per_message: int = 100,
) -> Iterator[bytes]:
    """``generate_messages`` one body at a time, for callers that need not hold them all."""
    config = SimulationConfig(
        seed=seed,
        # Records reach a message minutes after they happen: a modest rate keeps that backlog
        # small while still filling messages.
        rate=50.0,
        start=_BENCH_START,
        categories=tuple(categories) if categories is not None else None,
        max_records_per_message=records_per_message,
    )
    messages = Simulation(config).messages()
    for message in itertools.islice(messages, count):
        yield message.body
