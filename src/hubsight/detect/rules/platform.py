"""Platform rules: an event source that stops delivering, a category that goes quiet.

These watch arrival time, not event time: they run from ``DetectionEngine.tick(now)``, which the
collector calls periodically, and compare ``now`` with the last arrival per log and category.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import Field

from hubsight.detect.base import (
    TEN_YEARS_DAYS,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    example_event,
    numbered,
)
from hubsight.parsing.event import Event, LogSet

# They read arrivals, which the engine records for every event, not events themselves.
_ALL_LOG_SETS: frozenset[LogSet] = frozenset()


class SilenceConfig(RuleConfig):
    """How long a source may stay silent."""

    silent_minutes: float = Field(default=60, gt=0, le=TEN_YEARS_DAYS * 24 * 60)


class SourceSilent(Rule[SilenceConfig]):
    """No events at all from an event source for ``silent_minutes``."""

    meta = RuleMeta(
        id="platform.source_silent",
        title="Event source stopped delivering",
        description="No event arrived from a log (event source) for `silent_minutes`.",
        severity=Severity.HIGH,
        technique="T1562.008",
        log_sets=_ALL_LOG_SETS,
        runbook="Check the Event Hub, its diagnostic settings and `hubsight status`; a deleted "
        "diagnostic setting blinds hubsight.",
    )
    config_type = SilenceConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Arrivals are recorded by the engine; nothing to do per event."""
        return ()

    def check(self, now: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """One alert per log and silence (identified by the last arrival before it)."""
        limit = timedelta(minutes=self.config.silent_minutes)
        for log_name, last in _last_per_log(ctx).items():
            if now - last >= limit:
                yield Finding(
                    entity=f"{log_name}|{last.isoformat()}",
                    title=f"Event source {log_name} has delivered nothing "
                    f"since {last:%Y-%m-%d %H:%M} UTC",
                    at=last,
                    evidence=[],
                    stable_key=True,
                    context={"log_name": log_name, "last_arrival": last.isoformat()},
                )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Two hours of silence fire, and exactly ``silent_minutes`` (60); ten minutes, or one
        second short of the hour, do not."""
        events = numbered([_arrival(0, "SignInLogs")])
        start = events[0].timestamp
        hour = start + timedelta(hours=1)
        return (
            Example("two hours silent", events, fires=True, check_at=start + timedelta(hours=2)),
            Example("ten minutes", events, fires=False, check_at=start + timedelta(minutes=10)),
            Example("silent for the hour", events, fires=True, check_at=hour),
            Example(
                "a second short of the hour",
                events,
                fires=False,
                check_at=hour - timedelta(seconds=1),
            ),
        )


class CategoryConfig(RuleConfig):
    """How long a category that was flowing may pause while its log still delivers."""

    silent_hours: float = Field(default=6, gt=0, le=TEN_YEARS_DAYS * 24)


class CategorySilent(Rule[CategoryConfig]):
    """A category that was flowing went quiet while the rest of its log still flows (notable)."""

    meta = RuleMeta(
        id="platform.category_silent",
        title="Log category went silent",
        description="A category of a log that delivered before has had no event for "
        "`silent_hours` while other categories of the log still arrive.",
        severity=Severity.LOW,
        technique="T1562.008",
        log_sets=_ALL_LOG_SETS,
        runbook="Check the diagnostic setting of that category; someone may have unticked it.",
        notable=True,
    )
    config_type = CategoryConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Arrivals are recorded by the engine; nothing to do per event."""
        return ()

    def check(self, now: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """One notable per category and silence."""
        limit = timedelta(hours=self.config.silent_hours)
        last_per_log = _last_per_log(ctx)
        for (log_name, category), last in ctx.sources().items():
            if not category or now - last < limit or now - last_per_log[log_name] >= limit:
                continue
            yield Finding(
                entity=f"{log_name}|{category}|{last.isoformat()}",
                title=f"Category {category} of {log_name} silent since {last:%Y-%m-%d %H:%M} UTC",
                at=last,
                evidence=[],
                stable_key=True,
                context={"log_name": log_name, "category": category},
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """AuditLogs quiet for 7 h, or exactly ``silent_hours`` (6), while sign-ins flow fires;
        both flowing, or audit quiet one second short of the six hours, does not."""
        events = numbered(
            [_arrival(0, "AuditLogs"), _arrival(0, "SignInLogs"), _arrival(420, "SignInLogs")]
        )
        both = numbered([*events[:2], _arrival(400, "AuditLogs"), events[2]])
        at = events[2].timestamp + timedelta(minutes=1)
        flowing = numbered([*events[:2], _arrival(300, "SignInLogs")])
        six = events[0].timestamp + timedelta(hours=6)
        return (
            Example("audit silent", events, fires=True, check_at=at),
            Example("both flowing", both, fires=False, check_at=at),
            Example("audit silent for six hours", flowing, fires=True, check_at=six),
            Example(
                "audit silent a second short of six hours",
                flowing,
                fires=False,
                check_at=six - timedelta(seconds=1),
            ),
        )


def _arrival(minute: float, category: str) -> Event:
    event = example_event(LogSet.INGRESS_AUTHENTICATION, minute, category=category)
    event.log_name = "azure-prod"
    event.received_time = event.timestamp
    return event


def _last_per_log(ctx: RuleContext) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for (log_name, _), seen in ctx.sources().items():
        if log_name not in last or seen > last[log_name]:
            last[log_name] = seen
    return last


RULES = (SourceSilent, CategorySilent)
