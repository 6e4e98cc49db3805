"""A generated record before it is sent, and the per-run state record builders share."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    """What every record builder needs: the run's random source and the tenant."""

    rng: random.Random
    tenant: Tenant


def iso7(when: datetime) -> str:
    """Azure Monitor's ``time`` spelling: seven fractional digits and ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def iso_offset(when: datetime) -> str:
    """Entra's ``createdDateTime`` spelling: seven fractional digits and ``+00:00``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def later(when: datetime, rng: random.Random, low: float, high: float) -> datetime:
    """``when`` plus a uniformly random number of seconds between ``low`` and ``high``."""
    return when + timedelta(seconds=rng.uniform(low, high))
