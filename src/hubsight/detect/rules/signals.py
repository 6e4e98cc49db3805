"""Shared building blocks of the shipped rules: event predicates, threshold rules, examples."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import PositiveInt

from hubsight.detect.base import (
    EventRef,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    example_event,
)
from hubsight.detect.baseline import from_epoch
from hubsight.detect.windows import Entry, Window, crossings
from hubsight.parsing.event import Event, LogSet

AUTH_LOG_SETS = frozenset({LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION})
ADMIN_LOG_SETS = frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY})

SUCCESS = "SUCCESS"
PASSWORD_FAILURES = frozenset({"FAILED_BAD_PASSWORD", "FAILED_BAD_LOGIN"})
# The parser maps 500121 (strong authentication denied or timed out at the phone) to this.
MFA_DENIED = "FAILED_MFA"


def public_ip(event: Event) -> str | None:
    """The event's source IP when it is a public address (private ones cannot be placed)."""
    if event.source_ip and event.source_ip_scope in (None, "public"):
        return event.source_ip
    return None


def is_mfa_denial(event: Event) -> bool:
    """An MFA prompt denied, timed out or failed."""
    return event.result == MFA_DENIED


def raw_has(event: Event, *needles: bytes) -> bool:
    """Whether the raw record contains any of ``needles`` (a cheap pre-filter before parsing)."""
    # A copy plus substring search beats a regex alternation over the buffer by far.
    raw = bytes(memoryview(event.raw))
    return any(needle in raw for needle in needles)


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance between two points on Earth in kilometres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def entry_of(event: Event, value: str) -> Entry:
    """A window entry for ``event`` counting ``value``."""
    return Entry(ts=event.timestamp.timestamp(), value=value, ref=EventRef.of(event))


def refs(entries: Iterable[Entry]) -> list[EventRef]:
    """The event references of window entries."""
    return [e.ref for e in entries]


class WindowConfig(RuleConfig):
    """A count within a sliding window of event time."""

    count: PositiveInt
    window_minutes: PositiveInt


W = TypeVar("W", bound=WindowConfig)


class ThresholdRule(Rule[W]):
    """At least ``count`` events (or distinct values) per key within ``window_minutes``."""

    distinct: ClassVar[bool] = False

    @abstractmethod
    def select(self, event: Event) -> tuple[str, str] | None:
        """The key to count under and the value counted, or None when the event does not count."""

    @abstractmethod
    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """The finding for a window that reached the threshold."""

    def retention(self) -> timedelta:
        """Windows look back ``window_minutes``."""
        return timedelta(minutes=self.config.window_minutes)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Count the event; report every window it brings to the threshold."""
        selected = self.select(event)
        if selected is None:
            return
        key, value = selected
        window = ctx.window(key)
        entry = entry_of(event, value)
        if not window.add(entry):
            return
        length = self.config.window_minutes * 60.0
        for span in crossings(window, entry, length, self.config.count, distinct=self.distinct):
            yield self.describe(key, span)


class SequenceRule(Rule[W]):
    """``count`` lead-up events then a success for the same key within ``window_minutes``."""

    @abstractmethod
    def select(self, event: Event) -> tuple[str, bool] | None:
        """The key, and True for the closing success (False for a lead-up event), or None."""

    @abstractmethod
    def describe(self, key: str, leadup: Sequence[Entry], success: Entry) -> Finding:
        """The finding for a success preceded by enough lead-up events."""

    def retention(self) -> timedelta:
        """Windows look back ``window_minutes``."""
        return timedelta(minutes=self.config.window_minutes)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Record the event; report each success now preceded by enough lead-up events."""
        selected = self.select(event)
        if selected is None:
            return
        key, closing = selected
        window = ctx.window(key)
        ts = event.timestamp.timestamp()
        if closing and _covered(window, event, ts):
            return
        entry = Entry(ts=ts, value="S" if closing else "F", ref=EventRef.of(event))
        if not window.add(entry):
            return
        length, count = self.config.window_minutes * 60.0, self.config.count
        if closing:
            # Most successes follow no failure at all: too few entries before it to look closer.
            if window.count_since(ts - length) <= count:
                return
            ends = [entry]
        else:
            # A late lead-up event may complete the sequence of any later success in reach.
            ends = window.between(ts, ts + length)
        for end in ends:
            if end.value != "S":
                continue
            leadup = [e for e in window.between(end.ts - length, end.ts) if e.value == "F"]
            if len(leadup) >= count:
                yield self.describe(key, leadup, end)


# A success needs no entry of its own when an earlier success within this many seconds already
# has the same lead-up (no lead-up event between them): it would complete the same sequences.
_SAME_SUCCESS = 300.0


def _covered(window: Window, event: Event, ts: float) -> bool:
    last = window.last()
    if last is not None and last.ts <= ts and not _is(last.ref, event):
        # In order, only the latest entry can cover it.
        return last.value == "S" and ts - last.ts <= _SAME_SUCCESS
    for other in reversed(window.between(ts - _SAME_SUCCESS, ts)):
        if other.value == "F":
            return False
        if not _is(other.ref, event):
            return True
    return False


def _is(ref: EventRef, event: Event) -> bool:
    """Whether ``ref`` points at ``event`` (its position, or its time when it has none)."""
    return (
        ref.source_offset == event.source_offset
        and ref.record_index == event.record_index
        and ref.source_partition == event.source_partition
        and ref.source_topic == event.source_topic
        and ref.log_name == event.log_name
        and ref.timestamp == event.timestamp
    )


def span_finding(entity: str, title: str, span: Sequence[Entry], **fields: Any) -> Finding:
    """A finding whose evidence is a window's entries, placed at its last event."""
    return Finding(
        entity=entity, title=title, at=from_epoch(span[-1].ts), evidence=refs(span), **fields
    )


def signin(
    minute: float,
    user: str | None = "adele.vance@contoso.com",
    *,
    result: str = SUCCESS,
    ip: str = "203.0.113.10",
    country: str = "DE",
    lat: float = 52.52,
    lon: float = 13.40,
    offset: int = 0,
    **fields: Any,
) -> Event:
    """An interactive sign-in for examples."""
    return example_event(
        LogSet.INGRESS_AUTHENTICATION,
        minute,
        offset=offset,
        category="SignInLogs",
        operation="Sign-in activity",
        result=result,
        user=user,
        source_ip=ip,
        geoip_country_code=country,
        geoip_latitude=lat,
        geoip_longitude=lon,
        actor_type="user" if user else "service_principal",
        **fields,
    )


def admin(minute: float, operation: str, *, offset: int = 0, **fields: Any) -> Event:
    """An admin-activity event for examples."""
    fields.setdefault("user", "admin@contoso.com")
    fields.setdefault("source_ip", "198.51.100.7")
    fields.setdefault("result", SUCCESS)
    return example_event(
        LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, minute, offset=offset, operation=operation, **fields
    )
