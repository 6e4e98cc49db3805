"""Per-user (and per service principal) baselines: what was seen, first and last, by kind.

Kinds are the behavioural dimensions the issue names: ``country``, ``ip``, ``asn`` (the
organization when GeoIP knows it, else the address's /16), ``device`` and ``app``. Only
successful sign-ins feed a baseline, so an attacker's failures do not teach hubsight that their
country is normal. ``recent`` keeps the last successful sign-ins
to correlate third-party alerts with the user's timeline.

Every question is asked by event time, so the answers do not depend on the order events arrived
in. A value's sightings form *episodes*: runs in which no two consecutive sightings are more than
the horizon apart. A sighting is new exactly when it starts an episode (nothing in the horizon
before it). ``Seen`` keeps the latest episode and the end of the one before, which answers
"seen in the horizon before ``at``" exactly, whatever order the sightings came in, for any ``at``
from two latenesses before the newest sighting on (rules ask no earlier), provided the horizon
is longer than that: a late sighting can only start, extend or join episodes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.detect.base import EventRef
from hubsight.parsing.event import Event, LogSet

RECENT_SIGNINS = 20
# Workloads sign in from ever-new cloud addresses; beyond this many values per kind the least
# recently seen are forgotten, which keeps a baseline small enough to save on every batch.
MAX_VALUES_PER_KIND = 256
# Every kind a baseline learns: a sign-in's (above), the data-plane baselines' (``app``,
# ``identity``, ``signin``; detect.dataplane) and PIM activations' (``pim_role``; detect.pim).
# ``observe`` refuses any other, so the console's label for each (web.entity_pages) is checked
# against this list.
KINDS = frozenset({"country", "ip", "asn", "device", "app", "identity", "signin", "pim_role"})


# Atoms only, so not tracked by the cyclic GC (a tenant holds hundreds of thousands of them).
class Seen(msgspec.Struct, array_like=True, gc=False):
    """A value's latest episode (first and last event time, epoch seconds) and sightings."""

    first: float
    last: float
    count: int = 1
    # The last sighting of the episode before ``first`` (more than a horizon before it).
    before: float | None = None

    def covers(self, ts: float, gap: float) -> bool:
        """Whether the value was seen in the ``gap`` seconds before ``ts`` (``ts`` excluded)."""
        if self.first < ts:
            # Inside an episode consecutive sightings are at most ``gap`` apart.
            return self.last >= ts - gap
        before = self.before
        return before is not None and ts - gap <= before < ts

    def add(self, ts: float, gap: float) -> None:
        """Count a sighting at ``ts``, in any order, keeping the episodes exact."""
        self.count += 1
        if ts > self.last:
            if ts - self.last > gap:
                self.before, self.first = self.last, ts
            self.last = ts
            return
        if ts >= self.first:
            return
        before = self.before
        if self.first - ts > gap:
            # It belongs before the latest episode, where only the last sighting matters.
            self.before = ts if before is None else max(before, ts)
        elif before is not None and ts - before <= gap:
            # It bridges the two episodes. The merged one started before ``before``: any time
            # an arriving event can ask about is later than that, so ``before`` stands in.
            self.first, self.before = before, None
        else:
            self.first = ts


class SignIn(msgspec.Struct, array_like=True, frozen=True, gc=False):
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
    # Per kind, the latest start of any value's latest episode, so that ``starts_after`` needs
    # no look at every value (a workload has hundreds of IPs). Values forgotten later leave it
    # as it was: it then answers True needlessly, which costs rules a look, never an alert.
    latest_start: dict[str, float] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Baselines saved before ``latest_start`` existed.
        if not self.latest_start:
            for kind, values in self.kinds.items():
                if values:
                    self.latest_start[kind] = max(s.first for s in values.values())

    def seen(self, kind: str, value: str, at: datetime, horizon: timedelta) -> bool:
        """Whether ``value`` was seen in the ``horizon`` before ``at``."""
        seen = self.kinds.get(kind, {}).get(value)
        return seen is not None and seen.covers(at.timestamp(), horizon.total_seconds())

    def known(self, kind: str, at: datetime, horizon: timedelta) -> list[str]:
        """Values of ``kind`` seen in the ``horizon`` before ``at``, sorted."""
        ts, gap = at.timestamp(), horizon.total_seconds()
        return sorted(v for v, s in self.kinds.get(kind, {}).items() if s.covers(ts, gap))

    def has_history(self, kind: str, at: datetime, horizon: timedelta) -> bool:
        """Whether anything of ``kind`` was seen in the ``horizon`` before ``at``."""
        ts, gap = at.timestamp(), horizon.total_seconds()
        return any(s.covers(ts, gap) for s in self.kinds.get(kind, {}).values())

    def starts_after(self, kind: str, at: datetime) -> bool:
        """Whether some value of ``kind`` began its latest episode after ``at`` (or may have).

        Only then can a sighting at ``at`` change what is new after it: rules skip their
        corrections for in-order events with this one check.
        """
        return self.latest_start.get(kind, -math.inf) > at.timestamp()

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

    def observe(self, kind: str, value: str, ts: float, gap: float) -> None:
        """Record that ``value`` of ``kind`` was seen at ``ts`` (any order), ``gap`` = horizon s."""
        values = self.kinds.get(kind)
        if values is None:
            if kind not in KINDS:
                raise ValueError(f"baseline kind {kind!r} is not in detect.baseline.KINDS")
            values = self.kinds[kind] = {}
        seen = values.get(value)
        if seen is None:
            if len(values) >= MAX_VALUES_PER_KIND:
                # Forget the least recently seen quarter at once: one sort per 64 new values.
                stale = sorted(values, key=lambda v: values[v].last)[: MAX_VALUES_PER_KIND // 4]
                for old in stale:
                    del values[old]
            values[value] = Seen(first=ts, last=ts)
        elif seen.last < ts <= seen.last + gap:
            # Nearly every sighting extends the latest episode in order: no episode starts.
            seen.last = ts
            seen.count += 1
            return
        else:
            seen.add(ts, gap)
            ts = seen.first
        starts = self.latest_start
        if ts > starts.get(kind, -math.inf):
            starts[kind] = ts

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
            for seen in values.values():
                if seen.before is not None and seen.before < before:
                    seen.before = None
            changed = changed or bool(stale)
        return changed

    def empty(self) -> bool:
        """Whether nothing is remembered any more (no value of any kind, no recent sign-in)."""
        return not self.recent and not any(self.kinds.values())

    def country_counts(self) -> dict[str, int]:
        """Successful sign-ins per country in the baseline."""
        return {c: s.count for c, s in self.kinds.get("country", {}).items()}


def observe_signin(
    baselines: dict[str, UserBaseline], event: Event, ts: float, horizon: float
) -> str | None:
    """Teach the baseline of the user (or service principal) of a successful sign-in ``event``.

    Returns the subject whose baseline changed (None: the sign-in names nobody).
    """
    if event.user:
        subject = event.user
    elif event.application_id:
        subject = f"sp:{event.application_id}"
    else:
        return None
    baseline = baselines.get(subject)
    if baseline is None:
        baseline = baselines[subject] = UserBaseline()
    observe = baseline.observe
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
    return subject


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
