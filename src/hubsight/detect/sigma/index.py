"""The single-event Sigma rules of a kind of event as one matcher, indexed by required values.

``SigmaIndex.select`` decodes an event's record once and runs the conditions of the kind's
Sigma rules compiled into one function (``sigma.matcher``); the engine then asks only the rules
that match for their findings (``Indexed.found``), which test nothing again. With many rules it
first narrows them down: most Sigma rules can hold only when the record carries certain values
(``ResultType: 50053``, ``AppId`` one of a list, ``riskState: atRisk``). ``requirement``
derives from a rule's condition clauses of such literals that every match satisfies (each
clause: at least one of its ``(path, value)`` literals holds); the index keeps each rule's
narrowest clause and runs only the predicates of rules whose clause the record satisfies,
reading each path once. A clause is necessary, never sufficient, so the index changes which
predicates run, never what they find. Anything it cannot reason about (a ``not``, a wildcard, a
keyword, a comparison) contributes no clause; a rule with no clause at all runs on every event.

The engine hands each rule only the events of its categories (and of its operations and
sign-in error codes, when its condition names them), so a kind of event reaches few rules: on
the simulated tenant with SigmaHQ's Azure rules about a dozen per sign-in, tested by one
compiled function that reads each field once. With 400 more sign-in rules, each on its own value,
the index made the rules (then closures) two to three times faster; it is used from
``MIN_INDEXED`` rules with clauses on, and then runs each candidate's condition compiled alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.types import SigmaBool, SigmaNumber, SigmaString

from hubsight.detect.base import Finding, RuleContext
from hubsight.detect.sigma.condition import Condition
from hubsight.detect.sigma.matcher import compile_each, compile_matcher
from hubsight.detect.sigma.record import RECORDS, AzureRecord, FieldReader
from hubsight.parsing.event import Event

# A literal: the record path and the value it must hold, as lower-case text (strings, booleans)
# or as a number (numbers, which the predicates compare as numbers, numeric text included).
Literal = tuple[str, str | float]
Clause = frozenset[Literal]
Requirement = tuple[Clause, ...]
T = TypeVar("T")
# Per value of a path, the positions of the targets it satisfies.
_Hits = dict[Any, list[int]]
# Kinds of events reaching fewer rules with clauses than this run every rule (see above).
MIN_INDEXED = 24

# An OR of parts each with clauses needs one clause per combination of the parts' clauses;
# beyond this many combinations each part gives only its narrowest clause.
_MAX_COMBINATIONS = 16


def requirement(conditions: Sequence[Any]) -> Requirement:
    """Clauses of literals that hold whenever any of ``conditions`` (parsed trees) holds.

    Empty when nothing is known: then every event must reach the rule.
    """
    return _simplified(_any(conditions))


def _clauses(tree: Any) -> list[Clause]:
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        literal = _literal(tree)
        return [] if literal is None else [frozenset({literal})]
    if isinstance(tree, ConditionAND):
        return [clause for arg in tree.args for clause in _clauses(arg)]
    if isinstance(tree, ConditionOR):
        return _any(tree.args)
    # A NOT, a keyword, a null test: nothing the record must carry.
    return []


def _any(trees: Iterable[Any]) -> list[Clause]:
    parts = [_clauses(tree) for tree in trees]
    if not parts or any(not part for part in parts):
        # One part holding without any literal makes the whole OR hold without one.
        return []
    combinations = 1
    for part in parts:
        combinations *= len(part)
    if combinations > _MAX_COMBINATIONS:
        parts = [[min(part, key=len)] for part in parts]
    return [frozenset().union(*choice) for choice in itertools.product(*parts)]


def _literal(tree: ConditionFieldEqualsValueExpression) -> Literal | None:
    # Exactly the equalities the backend's predicates test: a plain string (``|cased`` too: a
    # cased match is a match of the lower-case texts), a number, a boolean.
    value = tree.value
    if isinstance(value, SigmaBool):
        return (tree.field, "true" if value.boolean else "false")
    if isinstance(value, SigmaNumber):
        return (tree.field, float(value.number))
    if isinstance(value, SigmaString) and not value.contains_special():
        if value.contains_placeholder():
            return None
        return (tree.field, "".join(p for p in value.s if isinstance(p, str)).lower())
    return None


def _simplified(clauses: list[Clause]) -> Requirement:
    # A clause containing another is implied by it: keep the narrower. Narrowest first, in an
    # order that does not depend on hashing.
    unique = sorted(set(clauses), key=lambda clause: (len(clause), sorted(map(repr, clause))))
    kept: list[Clause] = []
    for clause in unique:
        if not any(other <= clause for other in kept):
            kept.append(clause)
    return tuple(kept)


class SigmaIndex(Generic[T]):
    """The single-event Sigma rules of one kind of event, run as one matcher.

    ``select`` decodes the record once and runs every rule's condition in one compiled function;
    when enough rules have clauses, it picks the candidates through the index and runs only
    theirs. The engine then runs only the rules that match, instead of calling each rule to
    find out.
    """

    def __init__(
        self,
        targets: Sequence[tuple[T, Requirement, Condition]],
        *,
        fallbacks: Sequence[T] | None = None,
        least: int = MIN_INDEXED,
    ) -> None:
        self._targets = tuple(target for target, _, _ in targets)
        # In place of a target whose condition raises, what to run (the rule's own evaluation,
        # which records the error against it); by default the target itself.
        self._fallbacks = self._targets if fallbacks is None else tuple(fallbacks)
        if len(self._fallbacks) != len(self._targets):
            raise ValueError("SigmaIndex needs one fallback per target")
        conditions = tuple(condition for _, _, condition in targets)
        screened = [(p, clauses) for p, (_, clauses, _) in enumerate(targets) if clauses]
        # Rules without clauses are candidates for every event.
        self._always = [p for p, (_, clauses, _) in enumerate(targets) if not clauses]
        # Per path read, how to read its values (as lower-case text or as numbers) and the
        # rules each value makes candidates; empty when fewer than ``least`` rules have clauses.
        self._lookups: list[tuple[Callable[[AzureRecord], list[Any]], _Hits]] = []
        # Unindexed, one function tests every rule, reading each field once.
        self._match = compile_matcher(conditions)
        self._predicates: list[Callable[[AzureRecord], Any]] = []
        if len(screened) < least:
            return
        self._predicates = compile_each(conditions)
        by_path: dict[tuple[str, bool], _Hits] = {}
        for position, clauses in screened:
            # One clause per rule, its narrowest (the first): every other clause's paths would
            # cost reads that running the rule may never make.
            for path, value in clauses[0]:
                hits = by_path.setdefault((path, isinstance(value, str)), {})
                hits.setdefault(value, []).append(position)
        for (path, text), hits in sorted(by_path.items()):
            reader = FieldReader(path)
            self._lookups.append((reader.lowered if text else reader.numbers, hits))

    def __len__(self) -> int:
        return len(self._targets)

    @property
    def indexed(self) -> bool:
        """Whether candidates are picked by their clauses (else every rule runs)."""
        return bool(self._lookups)

    def select(self, event: Event) -> list[T]:
        """The targets whose predicate holds on ``event``'s record, in their order (the
        fallbacks of those whose predicate raises)."""
        record = RECORDS.record(event)
        if record is None:
            # No predicate holds on a record that is not a JSON object.
            return []
        if not self._lookups:
            return self._match(record, self._targets, self._fallbacks)
        chosen = set(self._always)
        for values_of, table in self._lookups:
            for value in values_of(record):
                hits = table.get(value)
                if hits is not None:
                    chosen.update(hits)
        targets, predicates = self._targets, self._predicates
        selected = []
        for position in sorted(chosen):
            try:
                if predicates[position](record):
                    selected.append(targets[position])
            except Exception:  # noqa: BLE001 - the engine runs the rule, which records the error
                selected.append(self._fallbacks[position])
        return selected


class Indexed:
    """A rule the engine may run through a kind's ``SigmaIndex`` (single-event Sigma rules).

    The engine runs such a rule's ``found`` on the events the index says its condition holds
    on, instead of its ``evaluate``, which would test the condition again.

    A plain base, not a protocol: the engine asks every rule once per new kind of event, and a
    protocol's isinstance check costs tens of times more.
    """

    @property
    def requirement(self) -> Requirement:
        """The clauses every record the rule matches satisfies (empty: none known)."""
        return ()

    @property
    def condition(self) -> Condition | None:
        """The rule's condition, as its kind's matcher compiles it (None: no single-event rule)."""
        return None

    def found(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """The findings of ``event``, a record ``condition`` holds on (as its index found)."""
        raise NotImplementedError(f"{type(self).__name__} has a condition but no found()")


def split_indexed(
    targets: Sequence[T],
    rule_of: Callable[[T], object],
    found: Callable[[T, Indexed], T],
) -> tuple[list[T], SigmaIndex[T] | None]:
    """The targets to run one by one, and a matcher of the others (None when there are none).

    The matcher selects, for a target whose rule's condition holds, ``found(target, rule)``:
    the target as run on an event known to match (``Indexed.found``); for one whose condition
    raises, the target itself.
    """
    plain: list[T] = []
    matched: list[tuple[T, Requirement, Condition]] = []
    fallbacks: list[T] = []
    for target in targets:
        rule = rule_of(target)
        condition = rule.condition if isinstance(rule, Indexed) else None
        if condition is None:
            plain.append(target)
        else:
            indexed = cast(Indexed, rule)
            matched.append((found(target, indexed), indexed.requirement, condition))
            fallbacks.append(target)
    return plain, SigmaIndex(matched, fallbacks=fallbacks) if matched else None
