"""A generated record before it is sent, and the per-run state record builders share."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hubsight.simulate.sessions import Sessions
from hubsight.simulate.tenant import Tenant

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Draft:
    """One Azure record with its event time, Azure's processing time and a key for ground truth."""

    event_time: datetime
    azure_time: datetime
    category: str
    record: Record
    key: str


@dataclass(frozen=True, slots=True)
class Context:
    """What every record builder needs: the run's random source, the tenant, a cache of record
    parts that depend only on the tenant (built once per run, shared by records), and where
    people are and which sign-in session each device is in."""

    rng: random.Random
    tenant: Tenant
    parts: dict[Hashable, Any] = field(default_factory=dict)
    sessions: Sessions = field(default_factory=Sessions)


def iso7(when: datetime) -> str:
    """Azure Monitor's ``time`` spelling of a UTC time: seven fractional digits and ``Z``."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "0Z"


def iso_offset(when: datetime) -> str:
    """Entra's ``createdDateTime`` spelling of a UTC time: seven fractional digits, ``+00:00``."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "0+00:00"


def later(when: datetime, rng: random.Random, low: float, high: float) -> datetime:
    """``when`` plus a uniformly random number of seconds between ``low`` and ``high``."""
    return when + timedelta(seconds=rng.uniform(low, high))


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
