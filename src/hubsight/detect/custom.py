"""Custom LEQL alerts, the three kinds InsightIDR has: pattern, threshold and inactivity.

Each is a saved LEQL search run on the clock (``DetectionEngine.tick``) over a trailing window:

    [[custom]]
    id = "owner-role-outside-change-window"
    title = "Owner assigned"
    kind = "pattern"            # every matching event alerts
    query = "where(operation = \\"MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE\\")"

    kind = "threshold"          # a groupby/calculate whose value crosses ``threshold``
    query = "where(result = FAILED_BAD_PASSWORD) groupby(source_ip) calculate(count)"
    threshold = 100

    kind = "inactivity"         # no matching event for ``window_minutes``
    query = "where(log_set = \\"Cloud Service Admin Activity\\")"

Detection and search are sibling stages over the store; custom alerts are searches by
definition, so they run them through a ``Searcher`` handed in by whoever wires the stages
together (``hubsight.query.search.searcher``), and this package never imports the query one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event


class CustomAlertSpec(BaseModel):
    """One custom alert as written in ``detect.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    title: str
    kind: Literal["pattern", "threshold", "inactivity"]
    query: str
    severity: Severity = Severity.MEDIUM
    window_minutes: Minutes = 15
    threshold: float | None = None
    log_sets: tuple[str, ...] = ()
    runbook: str = "Open the query in Log Search and review the matching events."

    @model_validator(mode="after")
    def _threshold_for_threshold_kind(self) -> CustomAlertSpec:
        if (self.kind == "threshold") != (self.threshold is not None):
            raise ValueError("threshold is required for kind 'threshold' and only for it")
        return self


class SearchOutcome(Protocol):
    """What a search returned: matching events (as dicts), or a table."""

    @property
    def events(self) -> list[dict[str, Any]]:
        """Matching events, newest first."""

    @property
    def columns(self) -> list[str]:
        """Column names of a table result."""

    @property
    def rows(self) -> list[list[Any]]:
        """Rows of a table result."""


Searcher = Callable[[str, datetime, datetime, tuple[str, ...]], SearchOutcome]


class CustomRule(Rule[RuleConfig]):
    """A custom alert (one subclass per spec, made by ``build_custom_rules``)."""

    spec: CustomAlertSpec
    searcher: Searcher

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Custom alerts run on the clock, not per event."""
        return ()

    def check(self, now: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """Run the search over the trailing window and report what it found."""
        spec = self.spec
        start = now - timedelta(minutes=spec.window_minutes)
        outcome = self.searcher(spec.query, start, now, spec.log_sets)
        if spec.kind == "pattern":
            for event in outcome.events:
                ref = _ref(event)
                who = event.get("user") or event.get("source_ip") or "tenant"
                yield Finding(
                    entity=str(who),
                    title=f"{spec.title} ({who})",
                    at=ref.timestamp,
                    evidence=[ref],
                    user=event.get("user"),
                    source_ip=event.get("source_ip"),
                )
        elif spec.kind == "threshold":
            limit = spec.threshold if spec.threshold is not None else float("inf")
            for row in outcome.rows:
                *group, value = row
                if isinstance(value, int | float) and value > limit:
                    label = ", ".join(str(g) for g in group) or "all"
                    yield Finding(
                        entity=label,
                        title=f"{spec.title}: {label} reached {value:g} (> {limit:g})",
                        at=now,
                        evidence=[],
                        context={"columns": outcome.columns, "row": row, "query": spec.query},
                    )
        elif not outcome.events:
            yield Finding(
                entity="inactivity",
                title=f"{spec.title}: nothing for {spec.window_minutes} min",
                at=now,
                evidence=[],
                context={"query": spec.query, "since": start.isoformat()},
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Custom alerts are the user's; their queries are tested in Log Search."""
        return ()


def build_custom_rules(specs: Sequence[CustomAlertSpec], searcher: Searcher) -> list[Rule[Any]]:
    """One rule per spec; its id is ``custom.<id>``."""
    rules: list[Rule[Any]] = []
    for spec in specs:
        if spec.kind == "threshold" and "calculate" not in spec.query:
            raise ConfigError(
                f"custom alert {spec.id}: a threshold alert needs calculate(...) in its query",
                hint="e.g. where(...) groupby(source_ip) calculate(count)",
            )
        meta = RuleMeta(
            id=f"custom.{spec.id}",
            title=spec.title,
            description=f"Custom {spec.kind} alert: {spec.query}",
            severity=spec.severity,
            technique="",
            log_sets=frozenset(),
            runbook=spec.runbook,
        )
        cls = type(
            f"Custom_{spec.id}",
            (CustomRule,),
            {"meta": meta, "spec": spec, "searcher": staticmethod(searcher)},
        )
        # Findings of a pattern fold per entity and window; others per window.
        rules.append(cls(RuleConfig(dedup_minutes=spec.window_minutes)))
    return rules


def _ref(event: dict[str, Any]) -> EventRef:
    return EventRef(
        timestamp=datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")),
        log_name=str(event.get("log_name", "")),
        source_topic=event.get("source_topic"),
        source_partition=event.get("source_partition"),
        source_offset=event.get("source_offset"),
        record_index=event.get("record_index"),
        log_set=event.get("log_set"),
    )
