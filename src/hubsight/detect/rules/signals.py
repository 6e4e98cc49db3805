"""Shared building blocks of the shipped rules: event predicates, threshold rules, examples."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from hubsight.detect.base import (
    Count,
    EventRef,
    Finding,
    Minutes,
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

    count: Count
    window_minutes: Minutes


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
    """``count`` lead-up events then a success for the same key within ``window_minutes``.

    A success is cited when at least ``count`` lead-up events fall in the ``window_minutes``
    up to it, unless it continues an earlier success: one at most five minutes before it with
    no lead-up event between (the burst of sign-ins that follows a guessed password is one
    finding, cited by its first success). Both are judged by event time, so a late event adds,
    moves or withdraws citations exactly as in-order delivery would have placed them.
    """

    # The shared window (``RuleContext.shared_window``) the closing events are kept in, when
    # other rules close on the same events under the same keys: a user's successful sign-ins
    # were kept once per rule, a third of the entries the built-in rules held.
    closing_window: ClassVar[str] = ""

    @abstractmethod
    def select(self, event: Event) -> tuple[str, bool] | None:
        """The key, and True for the closing success (False for a lead-up event), or None."""

    @abstractmethod
    def describe(self, key: str, leadup: Sequence[Entry], success: Entry) -> Finding:
        """The finding for a success preceded by enough lead-up events."""

    def __init__(self, config: W) -> None:
        super().__init__(config)
        # Per key, its two windows' names, built once rather than for every sign-in.
        self._window_names: dict[str, tuple[str, str]] = {}

    def retention(self) -> timedelta:
        """Windows look back ``window_minutes``, and successes five minutes."""
        return timedelta(seconds=max(self.config.window_minutes * 60.0, _CONTINUES))

    def shares(self) -> frozenset[str]:
        """The window of closing events, when shared."""
        return frozenset({self.closing_window} if self.closing_window else ())

    def shared_from(self) -> dict[str, str]:
        """Closing events were kept in the rule's "S" windows."""
        return {self.closing_window: "S\t"} if self.closing_window else {}

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Record the event; report the successes it gets cited, withdraw those it no longer."""
        # A plain function, not a generator: a user's every sign-in reaches it, and nearly all
        # end here with nothing to report.
        selected = self.select(event)
        if selected is None:
            return ()
        key, closing = selected
        names = self._window_names.get(key)
        if names is None:
            names = self._window_names[key] = (f"F\t{key}", f"S\t{key}")
        # Lead-ups and successes are kept apart so that counting either is a bisection.
        shared = self.closing_window
        leadups = ctx.window(names[0])
        successes = ctx.shared_window(shared, key) if shared else ctx.window(names[1])
        entry = Entry(
            ts=event.timestamp.timestamp(), value="S" if closing else "F", ref=EventRef.of(event)
        )
        # A success already in a shared window was added by a rule sharing it, or this event
        # is seen again: judged again either way, it gives the findings it gave, which fold
        # into the alerts without changing them.
        if not (successes if closing else leadups).add(entry) and not (closing and shared):
            return ()
        if not closing:
            return self._after_leadup(key, leadups, successes, entry.ts)
        # Citing this success, or one it now continues, takes lead-ups in reach: most have none.
        if not leadups.count_between(
            entry.ts - self.config.window_minutes * 60.0, entry.ts + _CONTINUES
        ):
            return ()
        return self._after_success(key, leadups, successes, entry)

    def _after_leadup(
        self, key: str, leadups: Window, successes: Window, ts: float
    ) -> Iterator[Finding]:
        # A lead-up can only add citations: to later successes it completes or now parts
        # from the success they continued.
        reach = max(self.config.window_minutes * 60.0, _CONTINUES)
        for later in successes.between(ts, ts + reach):
            if self._cited(leadups, successes, later):
                yield self._finding(key, leadups, later)

    def _after_success(
        self, key: str, leadups: Window, successes: Window, entry: Entry
    ) -> Iterator[Finding]:
        ts = entry.ts
        for later in successes.between(ts, ts + _CONTINUES):
            # Successes this one now continues lose their citation.
            if (
                later.ts > ts
                and self._cited(leadups, successes, later, ignore=entry)
                and not self._cited(leadups, successes, later)
            ):
                yield self._withdrawal(key, leadups, successes, later)
        if self._cited(leadups, successes, entry):
            yield self._finding(key, leadups, entry)

    def _leadup(self, leadups: Window, success: Entry) -> list[Entry]:
        return leadups.between(success.ts - self.config.window_minutes * 60.0, success.ts)

    def _cited(
        self, leadups: Window, successes: Window, success: Entry, ignore: Entry | None = None
    ) -> bool:
        start = success.ts - self.config.window_minutes * 60.0
        if leadups.count_between(start, success.ts) < self.config.count:
            return False
        earlier = [
            s
            for s in successes.between(success.ts - _CONTINUES, success.ts)
            # By value: in a shared window ``ignore`` may be another rule's equal entry.
            if s.ts < success.ts and (ignore is None or s != ignore)
        ]
        return not earlier or leadups.count_between(earlier[-1].ts, success.ts) > 0

    def _finding(self, key: str, leadups: Window, success: Entry) -> Finding:
        return self.describe(key, self._leadup(leadups, success), success)

    def _withdrawal(self, key: str, leadups: Window, successes: Window, success: Entry) -> Finding:
        """Retracts ``success`` and the lead-ups no other cited success of its alert shares."""
        bucket = self.config.dedup_minutes * 60.0
        start = success.ts // bucket * bucket
        kept: set[EventRef] = set()
        for other in successes.between(start, start + bucket):
            if (
                other.ts < start + bucket
                and other != success
                and self._cited(leadups, successes, other)
            ):
                kept.update(self._finding(key, leadups, other).evidence)
        finding = self._finding(key, leadups, success)
        finding.evidence = [ref for ref in finding.evidence if ref not in kept]
        finding.retract = True
        return finding


# A success this soon after another, with no lead-up event between, continues it.
_CONTINUES = 300.0

# The shared window of a user's successful sign-ins, for sequence rules closing on them.
USER_SUCCESSES = "user successes"


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
