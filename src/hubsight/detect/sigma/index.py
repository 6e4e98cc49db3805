"""Single-event Sigma rules indexed by the values their condition requires.

Most Sigma rules can hold only when the record carries certain values: ``ResultType: 50053``,
``AppId`` one of a list, ``riskState: atRisk``. ``requirement`` derives from a rule's condition
clauses of such literals that every match satisfies (each clause: at least one of its
``(path, value)`` literals holds). ``SigmaIndex`` keeps each rule's narrowest clause and hands an
event only the rules whose clause its record satisfies, reading each path once instead of
running every rule's predicate. A clause is necessary, never sufficient: a selected rule still
runs its whole predicate, so the index changes which rules run, never what they find. Anything
the index cannot reason about (a ``not``, a wildcard, a keyword, a comparison) contributes no
clause; a rule with no clause at all is not indexed and runs on every event of its kinds.

Reading a path the rules would not have read costs about as much as running two or three
rules, and the engine already hands each rule only the events of its categories (and of its
operations and sign-in error codes, when its condition names them). Measured on the simulated
tenant with SigmaHQ's Azure rules, the index pays once a kind of event reaches about two dozen
indexable rules: below ``MIN_INDEXED`` the rules simply run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.types import SigmaBool, SigmaNumber, SigmaString

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
# Kinds of events reaching fewer indexable rules than this run them all (see above).
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
    """The targets (rules, as the engine holds them) of one kind of event, by their literals."""

    def __init__(self, targets: Sequence[tuple[T, Requirement]]) -> None:
        self._targets = [target for target, _ in targets]
        by_path: dict[tuple[str, bool], _Hits] = {}
        for position, (_, clauses) in enumerate(targets):
            # One clause per rule, its narrowest (the first): every other clause's paths would
            # cost reads that running the rule may never make.
            for path, value in clauses[0]:
                hits = by_path.setdefault((path, isinstance(value, str)), {})
                hits.setdefault(value, []).append(position)
        # Per path, how to read its values (as lower-case text or as numbers) and their hits.
        self._lookups: list[tuple[Callable[[AzureRecord], list[Any]], _Hits]] = []
        for (path, text), hits in sorted(by_path.items()):
            reader = FieldReader(path)
            self._lookups.append((reader.lowered if text else reader.numbers, hits))

    def __len__(self) -> int:
        return len(self._targets)

    def select(self, event: Event) -> list[T]:
        """The targets whose clause ``event``'s record satisfies, in their order."""
        record = RECORDS.record(event)
        if record is None:
            # No predicate holds on a record that is not a JSON object.
            return []
        chosen: set[int] = set()
        for values_of, table in self._lookups:
            for value in values_of(record):
                hits = table.get(value)
                if hits is not None:
                    chosen.update(hits)
        targets = self._targets
        return [targets[position] for position in sorted(chosen)]


class Indexed:
    """A rule that knows what every record it matches carries (single-event Sigma rules).

    A plain base, not a protocol: the engine asks every rule once per new kind of event, and a
    protocol's isinstance check costs tens of times more.
    """

    @property
    def requirement(self) -> Requirement:
        """The clauses every record the rule matches satisfies (empty: none known)."""
        return ()


def split_indexed(
    targets: Sequence[T], requirement_of: Callable[[T], Requirement]
) -> tuple[list[T], SigmaIndex[T] | None]:
    """The targets no index screens, and an index of the others (None when too few to pay)."""
    plain: list[T] = []
    indexed: list[tuple[T, Requirement]] = []
    for target in targets:
        clauses = requirement_of(target)
        if clauses:
            indexed.append((target, clauses))
        else:
            plain.append(target)
    if len(indexed) < MIN_INDEXED:
        return list(targets), None
    return plain, SigmaIndex(indexed)
