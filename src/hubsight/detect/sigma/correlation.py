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
persists carry the state over a restart.

A group can gather thousands of events within its timespan (one user's sign-ins), so no window
is recounted: beside its entries each keeps ``Running`` counts, rebuilt from the entries after
a restart or a prune. An event in order is judged from them (the entries in the window, the
distinct values of the newest window, each base rule's match times); a late one re-judges the
windows after it in one sweep. A finding cites only the window's earliest ``MAX_EVIDENCE``
events not cited before, plus its first and last: the alert keeps the earliest
``MAX_EVIDENCE`` events of all its windows, which are all among those.

Conditions that hold for too few events (``lt``, ``lte``, ``eq``, ``neq``) could only be judged
once a window has closed, and are refused.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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

from hubsight.detect.alerts import MAX_EVIDENCE
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

    @property
    def base_detections(self) -> tuple[SigmaDetection, ...]:
        """The base rules themselves, in the order the correlation lists them."""
        return tuple(base.rule for base in self._bases)

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
            findings.extend(self._added(key, entry, event, ctx))
        return findings

    def _added(self, key: str, entry: Entry, event: Event, ctx: RuleContext) -> list[Finding]:
        """Add ``entry`` to the group's window; the findings of the windows it makes hold."""
        window = ctx.window(key)
        # A window of fewer entries than the count asks for holds neither that many events
        # nor that many values: most groups (one sign-in session) never get there, and
        # their running counts are built only if they do (``_running`` counts afresh).
        if window.add(entry) and len(window) >= self._threshold:
            return self._holding(key, window, entry, event)
        return []

    def _holding(self, key: str, window: Window, new: Entry, event: Event) -> list[Finding]:
        running = self._running(window, new)
        length = self._timespan
        ends = window.between(new.ts, new.ts + length)
        kind = self._kind
        if kind is SigmaCorrelationType.EVENT_COUNT:
            held = [e for e in ends if window.count_between(e.ts - length, e.ts) >= self._threshold]
        elif kind is SigmaCorrelationType.VALUE_COUNT:
            if ends[0].ts == running.end:
                # In order: the only window to judge is the newest, whose values are counted.
                held = ends if len(running.counts) >= self._threshold else []
            else:
                held = _distinct_holding(window, ends, length, self._threshold)
        else:
            held = [e for e in ends if self._temporal_holds(running.by_base, e.ts)]
        return [self._finding(key, window, running, end, event) for end in held]

    def _running(self, window: Window, new: Entry) -> Running:
        """The window's running counts, with ``new`` (just added) counted."""
        running = window.memo
        if (
            not isinstance(running, Running)
            or running.owner is not self
            or running.size != len(window) - 1
        ):
            # Restarted, pruned, or reconfigured: counted afresh from the entries, once.
            running = window.memo = Running(owner=self, by_base=[[] for _ in self._bases])
            for entry in window:
                self._count(running, window, entry)
            return running
        self._count(running, window, new)
        return running

    def _count(self, running: Running, window: Window, entry: Entry) -> None:
        running.size += 1
        matched, _, value = entry.value.partition(_SEP)
        if self._kind is SigmaCorrelationType.EVENT_COUNT:
            return
        if self._kind is not SigmaCorrelationType.VALUE_COUNT:
            for index in matched.split(","):
                insort(running.by_base[int(index)], entry.ts)
            return
        length, counts = self._timespan, running.counts
        if entry.ts > running.end:
            # The newest window moves on: the values of the entries it leaves are uncounted.
            for gone in window.between_open(running.end - length, entry.ts - length):
                _uncount(counts, gone.value.partition(_SEP)[2])
            running.end = entry.ts
        elif entry.ts < running.end - length:
            return
        counts[value] = counts.get(value, 0) + 1

    def _temporal_holds(self, by_base: list[list[float]], end: float) -> bool:
        start = end - self._timespan
        if self._kind is SigmaCorrelationType.TEMPORAL_ORDERED:
            # Backwards, each rule's latest match strictly before the next rule's: the latest
            # choices leave the most room to the rules before.
            before = end
            for index, times in enumerate(reversed(by_base)):
                at = bisect_right(times, before) if index == 0 else bisect_left(times, before)
                if not at or times[at - 1] < start:
                    return False
                before = times[at - 1]
            return True
        present = [bisect_right(t, end) > bisect_left(t, start) for t in by_base]
        if self._expression is None:
            return all(present)
        names: set[str] = set()
        for index, there in enumerate(present):
            if there:
                names |= self._bases[index].names
        return _satisfied(self._expression, names)

    def _finding(
        self, key: str, window: Window, running: Running, end: Entry, event: Event
    ) -> Finding:
        group = dict(zip(self._group_by, key.split(_SEP), strict=False)) if self._group_by else {}
        who = ", ".join(f"{name}={value}" for name, value in group.items()) or "tenant"
        # The alert names a user or address only when the group is that user or address, so
        # that it is the same whichever of the group's events arrived first.
        values = set(group.values())
        user = event.user if event.user and event.user.lower() in values else None
        address = event.source_ip if event.source_ip and event.source_ip in values else None
        # An alert keeps its earliest MAX_EVIDENCE events, and those of every window that held
        # are among the earliest MAX_EVIDENCE of one window: citing only those (once each), and
        # the window's first and last event for its span, gives the alert the whole window gives.
        head = window.head(end.ts - self._timespan, end.ts, MAX_EVIDENCE)
        cited = running.cited
        fresh = [e.ref for e in head if e.ref not in cited]
        cited.update(fresh)
        return Finding(
            entity=who,
            title=f"{self.meta.title} ({who})",
            at=from_epoch(end.ts),
            evidence=list(dict.fromkeys([head[0].ref, *fresh, end.ref])),
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


@dataclass(slots=True, eq=False, kw_only=True)
class Running:
    """What a correlation keeps of one window so that judging a window reads few entries."""

    # The rule whose counts these are: a rule reconfigured with a new timespan counts afresh.
    owner: SigmaCorrelation
    # The window's entries these count.
    size: int = 0
    # temporal kinds: per base rule, the times of its matches, sorted.
    by_base: list[list[float]]
    # value_count: the values of the window of ``timespan`` ending at the newest entry, ``end``.
    counts: dict[str, int] = field(default_factory=dict)
    end: float = -math.inf
    # The events findings already cited: each is cited once (the alert keeps it).
    cited: set[EventRef] = field(default_factory=set)


def _uncount(counts: dict[str, int], value: str) -> None:
    left = counts[value] - 1
    if left:
        counts[value] = left
    else:
        del counts[value]


def _distinct_holding(
    window: Window, ends: Sequence[Entry], length: float, threshold: int
) -> list[Entry]:
    """The ``ends`` (ascending) whose window has ``threshold`` distinct values, in one sweep."""
    entries = window.between(ends[0].ts - length, ends[-1].ts)
    held: list[Entry] = []
    counts: dict[str, int] = {}
    # ``counts`` holds the values of entries[lo:hi].
    lo = hi = 0
    for end in ends:
        while hi < len(entries) and entries[hi].ts <= end.ts:
            value = entries[hi].value.partition(_SEP)[2]
            counts[value] = counts.get(value, 0) + 1
            hi += 1
        while entries[lo].ts < end.ts - length:
            _uncount(counts, entries[lo].value.partition(_SEP)[2])
            lo += 1
        if len(counts) >= threshold:
            held.append(end)
    return held


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
