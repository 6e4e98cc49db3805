"""A converted single-event Sigma rule: its predicate, run on the raw record of each event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubsight.detect.base import (
    EventKind,
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
)
from hubsight.detect.sigma.condition import Condition, Predicate
from hubsight.detect.sigma.index import Indexed, Requirement
from hubsight.detect.sigma.matcher import compile_each
from hubsight.detect.sigma.record import AzureRecord, RecordCache
from hubsight.parsing.event import Event, LogSet


class SigmaConfig(RuleConfig):
    """Sigma rules have no thresholds; one alert per user (or IP) per hour."""


class SigmaDetection(Indexed, Rule[SigmaConfig]):
    """A converted Sigma rule; ``SigmaLoader`` makes one subclass per rule to carry its meta."""

    config_type = SigmaConfig

    def __init__(
        self,
        config: SigmaConfig,
        *,
        condition: Condition,
        categories: frozenset[str],
        records: RecordCache,
        author: str | None,
        operations: frozenset[str] | None = None,
        operation_log_sets: frozenset[LogSet] = frozenset(),
        codes: frozenset[str] | None = None,
        requirement: Requirement = (),
    ) -> None:
        super().__init__(config)
        self._condition = condition
        # Compiled alone, as a kind's matcher compiles it, for ``match`` (the engine's evaluation
        # of a rule its kind's matcher selected, and correlations' base rules).
        self._predicate: Predicate = compile_each([condition])[0]
        self._categories = categories
        # The operations the rule can fire on (lowered), when its condition names them: the
        # engine then never hands it other events (most activity rules name one or two).
        self._operations = operations
        self._operation_log_sets = operation_log_sets
        # The sign-in error codes (as text) the rule can fire on, when its condition names them.
        self._codes = codes
        self._requirement = requirement
        self._records = records
        # The Detection Rule License of SigmaHQ's rules asks that alerts name the rule's author.
        self._context = {"sigma_author": author} if author else {}

    @property
    def categories(self) -> frozenset[str]:
        """The Azure categories (lower case) whose records the rule reads."""
        return self._categories

    @property
    def requirement(self) -> Requirement:
        """The clauses of literals every record the rule matches satisfies (see ``index``)."""
        return self._requirement

    @property
    def condition(self) -> Condition:
        """The rule's condition as the tree its kind's matcher compiles."""
        return self._condition

    def reads(self, kind: EventKind) -> bool:
        """The log sets and categories of the rule's service, and the operations or sign-in
        error codes its condition names: most events reach none of the Sigma rules."""
        operations, codes = self._operations, self._codes
        return (
            super().reads(kind)
            and (kind.category is None or kind.category.lower() in self._categories)
            and (
                operations is None
                or kind.log_set not in self._operation_log_sets
                or (kind.operation or "").lower() in operations
            )
            # A sign-in without a code is handed over: the record may still hold one.
            and (codes is None or kind.error_code is None or str(kind.error_code) in codes)
        )

    def match(self, event: Event) -> AzureRecord | None:
        """The event's decoded record when the rule matches it, else None."""
        if (event.category or "").lower() not in self._categories:
            return None
        record = self._records.record(event)
        if record is None or not self._predicate(record):
            return None
        return record

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Run the rule's predicate on the event's raw record."""
        # A plain function, not a generator: most events fire nothing, and cheaply.
        if self.match(event) is None:
            return ()
        return self.found(event, ctx)

    def found(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """The finding of an event whose record the rule's condition holds on (its kind's
        index tested it), without testing it again."""
        # The index holds the rules that read the event's kind, and a kind without a category
        # reaches them too (``reads``); ``match`` finds nothing on such an event.
        if (event.category or "").lower() not in self._categories:
            return ()
        who = event.user or event.source_ip or "tenant"
        finding = Finding(
            entity=who,
            title=f"{self.meta.title} ({who})",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=event.user,
            source_ip=event.source_ip,
            context=dict(self._context),
        )
        return (finding,)

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Sigma rules bring no examples; tests/detect/test_sigma.py runs its own on records."""
        return ()
