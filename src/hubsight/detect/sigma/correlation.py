"""Sigma correlation rules (``event_count``, ``value_count``, ``temporal``, ``temporal_ordered``).

pySigma parses the rule and resolves its base rules; each base rule is converted like any other
Sigma rule. The correlation keeps, per group (its ``group-by`` values, read through ``aliases``
where a base rule names the value differently), an event-time window of the events its base
rules matched, one entry per event naming which base rules it matched. A correlation holds for
every window of ``timespan`` that ends at one of these events:

- ``event_count``: the window's events, compared with the condition (``gte``, ``gt``);
- ``value_count``: the distinct values of the condition's field in the window;
- ``temporal``: every base rule matched in the window (or the ``and``/``or`` expression of an
  extended condition holds over the rules that matched);
- ``temporal_ordered``: the base rules matched in their listed order, each strictly later
  than the one before.

All four only grow true as events are added, so re-checking every window a late event falls
into (``windows.py``) gives the alerts in-order delivery gives, and the windows the engine
persists carry the state over a restart. Conditions that hold for too few events (``lt``,
``lte``, ``eq``, ``neq``) could only be judged once a window has closed, and are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaCorrelationRuleError

from hubsight.detect.base import (
    EventKind,
    EventRef,
    Example,
    Finding,
    Rule,
    RuleContext,
)
from hubsight.detect.baseline import from_epoch
from hubsight.detect.sigma.detection import SigmaConfig, SigmaDetection
from hubsight.detect.sigma.record import AzureRecord, FieldReader
from hubsight.detect.windows import Entry, Window
from hubsight.parsing.event import Event

# Separates, in a window entry's value, the matched base rules from the counted field value.
_SEP = "\x1f"
# Condition operators a streaming window can decide as events arrive, with the count's offset.
_AT_LEAST = {SigmaCorrelationConditionOperator.GTE: 0, SigmaCorrelationConditionOperator.GT: 1}

# A temporal condition over the names of the base rules that matched in a window.
Expression = Any


@dataclass(frozen=True, slots=True)
class Base:
    """One base rule of a correlation, with where its events hold the group and counted values."""

    rule: SigmaDetection
    # The names the correlation condition uses for it (its name and its id, when set).
    names: frozenset[str]
    # Per group-by field, the readers of the record paths that hold its value.
    group: tuple[tuple[FieldReader, ...], ...]
    # value_count only: the readers of the counted field.
    counted: tuple[FieldReader, ...] = ()


class SigmaCorrelation(Rule[SigmaConfig]):
    """A converted Sigma correlation rule; the loader makes one subclass per rule for its meta."""

    config_type = SigmaConfig

    def __init__(
        self,
        config: SigmaConfig,
        *,
        kind: SigmaCorrelationType,
        bases: Sequence[Base],
        group_by: Sequence[str],
        timespan: float,
        threshold: int = 1,
        expression: Expression = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(config)
        self._kind = kind
        self._bases = tuple(bases)
        self._group_by = tuple(group_by)
        self._timespan = timespan
        self._threshold = threshold
        self._expression = expression
        self._context = context or {}

    @property
    def base_rules(self) -> list[str]:
        """The ids of the base rules, in the order the correlation lists them."""
        return [base.rule.meta.id for base in self._bases]

    def reads(self, kind: EventKind) -> bool:
        """The events any base rule reads."""
        return any(base.rule.reads(kind) for base in self._bases)

    def retention(self) -> timedelta:
        """Windows look back ``timespan``."""
        return timedelta(seconds=self._timespan)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Add the event to the windows of the groups it belongs to; report what now holds."""
        entries: dict[str, tuple[list[int], str | None]] = {}
        for index, base in enumerate(self._bases):
            record = base.rule.match(event)
            if record is None:
                continue
            key = _group_key(base, record)
            value = _first_text(base.counted, record) if base.counted else None
            matched, counted = entries.setdefault(key, ([], value))
            matched.append(index)
            if counted is None and value is not None:
                entries[key] = (matched, value)
        if not entries:
            return ()
        ref = EventRef.of(event)
        ts = event.timestamp.timestamp()
        findings: list[Finding] = []
        for key, (matched, value) in entries.items():
            if self._kind is SigmaCorrelationType.VALUE_COUNT and value is None:
                # COUNT(DISTINCT field) skips events without the field, as Sigma's backends do.
                continue
            entry = Entry(ts, ",".join(map(str, matched)) + _SEP + (value or ""), ref)
            window = ctx.window(key)
            if window.add(entry):
                findings.extend(self._holding(key, window, entry, event))
        return findings

    def _holding(self, key: str, window: Window, new: Entry, event: Event) -> list[Finding]:
        found: list[Finding] = []
        length = self._timespan
        for end in window.between(new.ts, new.ts + length):
            span = window.between(end.ts - length, end.ts)
            if self._holds(span):
                found.append(self._finding(key, span, event))
        return found

    def _holds(self, span: Sequence[Entry]) -> bool:
        kind = self._kind
        if kind is SigmaCorrelationType.EVENT_COUNT:
            return len(span) >= self._threshold
        if kind is SigmaCorrelationType.VALUE_COUNT:
            return len({e.value.partition(_SEP)[2] for e in span}) >= self._threshold
        if kind is SigmaCorrelationType.TEMPORAL:
            present = {int(i) for e in span for i in e.value.partition(_SEP)[0].split(",")}
            if self._expression is not None:
                names: set[str] = set()
                for index in present:
                    names |= self._bases[index].names
                return _satisfied(self._expression, names)
            return len(present) == len(self._bases)
        return _in_order(span, len(self._bases))

    def _finding(self, key: str, span: Sequence[Entry], event: Event) -> Finding:
        group = dict(zip(self._group_by, key.split(_SEP), strict=False)) if self._group_by else {}
        who = ", ".join(f"{name}={value}" for name, value in group.items()) or "tenant"
        # The alert names a user or address only when the group is that user or address, so
        # that it is the same whichever of the group's events arrived first.
        values = set(group.values())
        user = event.user if event.user and event.user.lower() in values else None
        address = event.source_ip if event.source_ip and event.source_ip in values else None
        return Finding(
            entity=who,
            title=f"{self.meta.title} ({who})",
            at=from_epoch(span[-1].ts),
            evidence=[e.ref for e in span],
            user=user,
            source_ip=address,
            context={**self._context, "sigma_group": group},
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Sigma rules bring no examples; tests/detect/test_sigma_correlation.py runs them."""
        return ()


def _group_key(base: Base, record: AzureRecord) -> str:
    return _SEP.join(_first_text(readers, record) or "" for readers in base.group)


def _first_text(readers: Sequence[FieldReader], record: AzureRecord) -> str | None:
    for reader in readers:
        texts = reader.lowered(record)
        if texts:
            return texts[0]
    return None


def _in_order(span: Sequence[Entry], rules: int) -> bool:
    # Greedy over event time: the earliest event of the next rule is the best one to take.
    # Events at the same time are one step, as "strictly later" leaves no order among them.
    wanted, index = 0, 0
    while index < len(span):
        ts = span[index].ts
        step = False
        while index < len(span) and span[index].ts == ts:
            matched = span[index].value.partition(_SEP)[0].split(",")
            step = step or str(wanted) in matched
            index += 1
        if step:
            wanted += 1
            if wanted == rules:
                return True
    return False


def _satisfied(expression: Expression, names: set[str]) -> bool:
    if isinstance(expression, SigmaRuleReference):
        return expression.reference in names
    if isinstance(expression, CorrelationConditionAND):
        return all(_satisfied(arg, names) for arg in expression.args)
    if isinstance(expression, CorrelationConditionOR):
        return any(_satisfied(arg, names) for arg in expression.args)
    raise SigmaCorrelationRuleError(f"unexpected correlation condition {expression!r}")


def threshold_of(rule: SigmaCorrelationRule) -> int:
    """The number of events (or values) the condition asks for at least; raises when it can't."""
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise SigmaCorrelationRuleError("an extended condition is only for temporal correlations")
    offset = _AT_LEAST.get(condition.op)
    if offset is None:
        raise SigmaCorrelationRuleError(
            f"the condition {condition.op.name.lower()} is not supported: a streaming engine "
            "can only decide 'at least' (gte, gt) before the window closes"
        )
    return max(condition.count + offset, 1)


def expression_of(rule: SigmaCorrelationRule) -> Expression:
    """The ``and``/``or`` tree of an extended temporal condition (None for the plain one)."""
    condition = rule.condition
    if isinstance(condition, SigmaCorrelationCondition):
        return None
    tree = condition.parsed
    _check_expression(tree)
    return tree


def _check_expression(tree: Expression) -> None:
    if isinstance(tree, SigmaRuleReference):
        return
    if isinstance(tree, CorrelationConditionAND | CorrelationConditionOR):
        for arg in tree.args:
            _check_expression(arg)
        return
    raise SigmaCorrelationRuleError(
        "'not' in a temporal condition is not supported: an absence can only be decided once "
        "the window has closed"
    )
