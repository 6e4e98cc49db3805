"""A converted Sigma condition as a small tree, before it becomes code.

The backend turns each Sigma condition into this tree instead of straight into closures, so
the same condition can run two ways: ``predicate`` builds the closures a single rule runs (its
own evaluation, used by ``SigmaDetection.match`` and by correlations), and ``sigma.matcher``
compiles the conditions of every rule of a kind of event into one function that reads each
field once. A ``FieldTest`` is a test the matcher writes inline; anything else (a field
reference, a null test, a regular expression over the whole record) is an ``Opaque`` leaf,
whose predicate both ways simply call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from hubsight.detect.sigma.record import AzureRecord, FieldReader

Predicate = Callable[[AzureRecord], bool]
# How a test sees a field: its values as lower-case text, as numbers, as they are, or (with
# no path) the record's whole JSON text in lower case, for keywords.
View = Literal["lowered", "numbers", "values", "text"]
# What a test asks of the values: one of them is the constant ("has"), one of them is in the
# constant set ("meets"), one of them contains / starts / ends with the constant text, or the
# constant (a function of one value) holds for one of them ("call").
Op = Literal["has", "meets", "contains", "startswith", "endswith", "call"]


class Condition:
    """A node of a converted condition."""

    __slots__ = ()

    def predicate(self) -> Predicate:
        """The condition as a closure over a decoded record."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, eq=False)
class FieldTest(Condition):
    """A test of one field's values, seen through ``view``: the matcher writes it inline."""

    path: str
    view: View
    op: Op
    constant: Any

    def predicate(self) -> Predicate:
        """One read of the field (memoised per record) and the test."""
        values_of = _view(self.path, self.view)
        constant = self.constant
        # Each operation written out: predicates run per rule per event, and one more call
        # per test would cost as much as the test.
        if self.op == "has":
            return lambda record: constant in values_of(record)
        if self.op == "meets":
            return lambda record: not constant.isdisjoint(values_of(record))
        test = _TESTS[self.op]
        return lambda record: test(values_of(record), constant)


@dataclass(frozen=True, slots=True, eq=False)
class Opaque(Condition):
    """A test the matcher calls as it is."""

    test: Predicate

    def predicate(self) -> Predicate:
        """The test itself."""
        return self.test


@dataclass(frozen=True, slots=True, eq=False)
class AllOf(Condition):
    """Every part holds."""

    parts: tuple[Condition, ...]

    def predicate(self) -> Predicate:
        """The parts' predicates, stopping at the first that fails."""
        return _joined(tuple(part.predicate() for part in self.parts), every=True)


@dataclass(frozen=True, slots=True, eq=False)
class AnyOf(Condition):
    """Some part holds."""

    parts: tuple[Condition, ...]

    def predicate(self) -> Predicate:
        """The parts' predicates, stopping at the first that holds."""
        return _joined(tuple(part.predicate() for part in self.parts), every=False)


@dataclass(frozen=True, slots=True, eq=False)
class Negation(Condition):
    """The part does not hold."""

    part: Condition

    def predicate(self) -> Predicate:
        """The negated predicate."""
        inner = self.part.predicate()
        return lambda record: not inner(record)


def _joined(parts: tuple[Predicate, ...], *, every: bool) -> Predicate:
    # All of the parts (``every``) or any: one or two parts without a loop, as most are.
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        if every:
            return lambda record: first(record) and second(record)
        return lambda record: first(record) or second(record)

    def joined(record: AzureRecord) -> bool:
        # A loop, not all() or any() over a generator: creating one costs as much as a test.
        for part in parts:
            if bool(part(record)) is not every:
                return not every
        return every

    return joined


def _view(path: str, view: View) -> Callable[[AzureRecord], Collection[Any]]:
    if view == "text":
        return lambda record: (record.text(),)
    reader = FieldReader(path)
    if view == "lowered":
        return reader.lowered
    if view == "numbers":
        return reader.numbers
    return reader.values


def contains(texts: Collection[str], needle: str) -> bool:
    """Whether one of ``texts`` contains ``needle``."""
    for text in texts:  # noqa: SIM110 - a loop: creating a generator costs more
        if needle in text:
            return True
    return False


def starts(texts: Collection[str], prefix: str) -> bool:
    """Whether one of ``texts`` starts with ``prefix``."""
    for text in texts:  # noqa: SIM110 - a loop, as in contains
        if text.startswith(prefix):
            return True
    return False


def ends(texts: Collection[str], suffix: str) -> bool:
    """Whether one of ``texts`` ends with ``suffix``."""
    for text in texts:  # noqa: SIM110 - a loop, as in contains
        if text.endswith(suffix):
            return True
    return False


def holds(values: Collection[Any], test: Callable[[Any], bool]) -> bool:
    """Whether ``test`` holds for one of ``values``."""
    for value in values:  # noqa: SIM110 - a loop, as in contains
        if test(value):
            return True
    return False


_TESTS: dict[str, Callable[[Collection[Any], Any], bool]] = {
    "contains": contains,
    "startswith": starts,
    "endswith": ends,
    "call": holds,
}
