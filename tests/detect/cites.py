"""A test rule whose every finding lands on one alert, for tests of how alerts are stored.

Imports only what every release since alerts had evidence parts has, so that
``scripts/make-detect-fixture.py`` runs it with an older release's code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    example_event,
)
from hubsight.parsing.event import Event, LogSet


class CitesConfig(RuleConfig):
    # Every event of a test lands on one alert (unless a test sets a shorter session).
    dedup_minutes: int = 100_000


class Cites(Rule[CitesConfig]):
    """Cites every sign-in; an ``undo M`` one takes back the sign-in of minute M."""

    meta = RuleMeta(
        id="test.cites",
        title="Cites",
        description="Test rule.",
        severity=Severity.MEDIUM,
        technique="T1110",
        log_sets=frozenset({LogSet.INGRESS_AUTHENTICATION}),
        runbook="-",
    )
    config_type = CitesConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """A finding per event, or the retraction of an earlier one."""
        if event.operation and event.operation.startswith("undo "):
            gone = ref(int(event.operation.split()[1]))
            yield Finding(
                entity="e", title="Cites", at=gone.timestamp, evidence=[gone], retract=True
            )
        else:
            yield Finding(
                entity="e", title="Cites", at=event.timestamp, evidence=[EventRef.of(event)]
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """None: the tests using it are its examples."""
        return ()


def event(minute: float, offset: int | None = None) -> Event:
    """A sign-in ``minute`` after the examples' start, at offset ``minute`` unless given."""
    return example_event(
        LogSet.INGRESS_AUTHENTICATION, minute, offset=int(minute) if offset is None else offset
    )


def ref(minute: int) -> EventRef:
    """The reference of ``event(minute)``."""
    return EventRef.of(event(minute))
