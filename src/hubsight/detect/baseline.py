"""Per-user (and per service principal) baselines: what was seen, first and last, by kind.

Kinds are the behavioural dimensions the issue names: ``country``, ``ip``, ``asn`` (the
organization when GeoIP knows it, else the address's /16), ``device`` and ``app``. Only
successful sign-ins feed a baseline, so an attacker's failures do not teach hubsight that their
country is normal. ``recent`` keeps the last successful sign-ins
to correlate third-party alerts with the user's timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.detect.base import EventRef

RECENT_SIGNINS = 20
# Workloads sign in from ever-new cloud addresses; beyond this many values per kind the least
# recently seen are forgotten, which keeps a baseline small enough to save on every batch.
MAX_VALUES_PER_KIND = 256


class Seen(msgspec.Struct, array_like=True):
    """First and last event time (epoch seconds) a value was seen, and how often."""

    first: float
    last: float
    count: int = 1


class SignIn(msgspec.Struct, array_like=True, frozen=True):
    """A successful sign-in as remembered for timelines."""

    ts: float
    source_ip: str | None
    country: str | None
    application: str | None
    ref: EventRef


class UserBaseline(msgspec.Struct):
    """Everything remembered about one user or service principal."""

    kinds: dict[str, dict[str, Seen]] = msgspec.field(default_factory=dict)
    recent: list[SignIn] = msgspec.field(default_factory=list)

    def seen(self, kind: str, value: str, at: datetime, horizon: timedelta) -> bool:
        """Whether ``value`` was seen in the ``horizon`` before ``at``."""
        seen = self.kinds.get(kind, {}).get(value)
        ts = at.timestamp()
        return seen is not None and seen.first < ts and seen.last >= ts - horizon.total_seconds()

    def known(self, kind: str, at: datetime, horizon: timedelta) -> list[str]:
        """Values of ``kind`` seen in the ``horizon`` before ``at``, sorted."""
        ts = at.timestamp()
        floor = ts - horizon.total_seconds()
        return sorted(
            v for v, s in self.kinds.get(kind, {}).items() if s.first < ts and s.last >= floor
        )

    def has_history(self, kind: str, at: datetime) -> bool:
        """Whether anything of ``kind`` was seen before ``at``."""
        ts = at.timestamp()
        return any(s.first < ts for s in self.kinds.get(kind, {}).values())

    def recent_signins(self, at: datetime, horizon: timedelta) -> list[dict[str, Any]]:
        """Successful sign-ins in the ``horizon`` before ``at``, oldest first."""
        ts = at.timestamp()
        floor = ts - horizon.total_seconds()
        return [
            {
                "time": from_epoch(s.ts).isoformat(),
                "source_ip": s.source_ip,
                "country": s.country,
                "application": s.application,
                "evidence": s.ref.as_dict(),
            }
            for s in self.recent
            if floor <= s.ts <= ts
        ]

    def observe(self, kind: str, value: str, ts: float) -> None:
        """Record that ``value`` of ``kind`` was seen at ``ts``."""
        values = self.kinds.setdefault(kind, {})
        seen = values.get(value)
        if seen is None:
            if len(values) >= MAX_VALUES_PER_KIND:
                # Forget the least recently seen quarter at once: one sort per 64 new values.
                stale = sorted(values, key=lambda v: values[v].last)[: MAX_VALUES_PER_KIND // 4]
                for old in stale:
                    del values[old]
            values[value] = Seen(first=ts, last=ts)
        else:
            seen.first = min(seen.first, ts)
            seen.last = max(seen.last, ts)
            seen.count += 1

    def remember(self, signin: SignIn) -> None:
        """Keep ``signin`` among the most recent successful sign-ins (by event time)."""
        recent = self.recent
        if not recent or signin.ts > recent[-1].ts:
            recent.append(signin)
        elif signin in recent:
            return
        else:
            recent.append(signin)
            recent.sort(key=lambda s: s.ts)
        if len(recent) > RECENT_SIGNINS:
            del recent[:-RECENT_SIGNINS]

    def prune(self, before: float) -> bool:
        """Forget values last seen before ``before``; True when anything was forgotten."""
        changed = False
        for values in self.kinds.values():
            stale = [v for v, s in values.items() if s.last < before]
            for value in stale:
                del values[value]
            changed = changed or bool(stale)
        return changed

    def country_counts(self) -> dict[str, int]:
        """Successful sign-ins per country in the baseline."""
        return {c: s.count for c, s in self.kinds.get("country", {}).items()}


def network_of(ip: str) -> str:
    """The network an address belongs to when its ASN is unknown: its /16 (IPv4) or /32 (IPv6)."""
    if ":" in ip:
        groups = ip.split(":")
        return f"{groups[0]}:{groups[1] if len(groups) > 1 else ''}::/32"
    parts = ip.split(".")
    return f"{parts[0]}.{parts[1]}.0.0/16" if len(parts) == 4 else ip


def from_epoch(ts: float) -> datetime:
    """The UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(ts, tz=UTC)
