"""A converted Sigma condition as a small tree, before it becomes code.

The backend turns each Sigma condition into this tree, and ``sigma.matcher`` compiles it: the
conditions of every rule of a kind of event into one function that reads each field once, and
a rule's own condition alone (its evaluation, used by ``SigmaDetection.match`` and by
correlations). A ``FieldTest`` is a test the matcher writes inline; anything else (a field
reference, a null test, a regular expression over the whole record) is an ``Opaque`` leaf,
which the compiled code calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hubsight.detect.sigma.record import AzureRecord

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


@dataclass(frozen=True, slots=True, eq=False)
class FieldTest(Condition):
    """A test of one field's values, seen through ``view``: the matcher writes it inline."""

    path: str
    view: View
    op: Op
    constant: Any


@dataclass(frozen=True, slots=True, eq=False)
class Opaque(Condition):
    """A test the matcher calls as it is."""

    test: Predicate


@dataclass(frozen=True, slots=True, eq=False)
class AllOf(Condition):
    """Every part holds."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, eq=False)
class AnyOf(Condition):
    """Some part holds."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Negation(Condition):
    """The part does not hold."""

    part: Condition
