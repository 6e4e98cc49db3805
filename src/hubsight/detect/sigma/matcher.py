"""The conditions of a kind's Sigma rules compiled into one Python function.

Run as closures, each rule re-reads the fields it tests from the record's memo (a dict lookup
and a call per test), and every ``and``/``or`` is a call of its own: on a sign-in reaching a
dozen rules that is some forty calls. ``compile_matcher`` writes the conditions of all the
rules of a kind as Python source instead, one ``if`` per rule, compiled once: each field is read
at most once per event, into a local, the first time a rule needs it, and each test is written
inline. A field's lower-case text is read straight down its keys as spelled when they hold one
string, the common case; anything else (another spelling, a list, JSON in a string, a null)
takes ``FieldReader``'s general path, so the matcher finds exactly what the closures find.

Rule values and field names come from the Sigma files users import: none of their text ever
becomes source. The source names only what it makes itself (``k3``, the fourth constant;
``f2``, the third field read; ``record``, ``out``, ``targets``, ``fallbacks``); values, paths,
test functions and the reading functions are arguments of the factory the source defines, and
the source is run with no builtins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from typing import Any, cast

from hubsight.detect.sigma.condition import (
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Negation,
    Opaque,
    View,
)
from hubsight.detect.sigma.record import AzureRecord, Derived, FieldReader, number_of, text_of

# The targets whose conditions hold on a record, given the targets in the conditions' order,
# and in their place what to run for those whose condition raises.
Matcher = Callable[[AzureRecord, Sequence[Any], Sequence[Any]], list[Any]]
Reader = Callable[[AzureRecord], Any]
_MISSING = object()
_GENERAL = object()
_PAIR_KEY = "key"
# Compiled matchers kept for reuse: kinds of events share their rules (every operation of a log
# set reaches the same few), and compiling costs milliseconds.
_CACHED = 1024


def _contains(texts: Collection[str], needle: str) -> bool:
    """Whether one of ``texts`` contains ``needle``."""
    for text in texts:  # noqa: SIM110 - a loop: creating a generator costs more
        if needle in text:
            return True
    return False


def _starts(texts: Collection[str], prefix: str) -> bool:
    """Whether one of ``texts`` starts with ``prefix``."""
    for text in texts:  # noqa: SIM110 - a loop, as in _contains
        if text.startswith(prefix):
            return True
    return False


def _ends(texts: Collection[str], suffix: str) -> bool:
    """Whether one of ``texts`` ends with ``suffix``."""
    for text in texts:  # noqa: SIM110 - a loop, as in _contains
        if text.endswith(suffix):
            return True
    return False


def _holds(values: Collection[Any], test: Callable[[Any], bool]) -> bool:
    """Whether ``test`` holds for one of ``values``."""
    for value in values:  # noqa: SIM110 - a loop, as in _contains
        if test(value):
            return True
    return False


_TESTS: dict[str, Callable[..., bool]] = {
    "contains": _contains,
    "startswith": _starts,
    "endswith": _ends,
    "call": _holds,
}


@functools.lru_cache(maxsize=_CACHED)
def compile_matcher(conditions: tuple[Condition, ...]) -> Matcher:
    """One function running ``conditions`` (one per target) on a record.

    It returns the targets (its second argument, in the conditions' order) whose condition
    holds and, for those whose condition raises, their fallbacks (its third): the engine then
    evaluates that rule, which records the error against it.
    """
    writer = _Writer()
    failed = writer.constant(Exception)
    body: list[str] = []
    for position, condition in enumerate(conditions):
        test = writer.expression(condition)
        body += [
            "        try:",
            f"            if {test}:",
            f"                out.append(targets[{position}])",
            f"        except {failed}:",
            f"            out.append(fallbacks[{position}])",
        ]
    head = ["    def match(record, targets, fallbacks):"]
    if writer.fields:
        head.append("        " + " = ".join(writer.fields.values()) + " = None")
    head.append("        out = []")
    lines = [*head, *body, "        return out", "    return match"]
    return cast(Matcher, _build(writer, lines))


def compile_each(conditions: Sequence[Condition]) -> list[Callable[[AzureRecord], Any]]:
    """One function per condition, each reading its own fields (for the index's candidates)."""
    writer = _Writer()
    lines: list[str] = []
    names = []
    for position, condition in enumerate(conditions):
        writer.fields.clear()
        test = writer.expression(condition)
        lines.append(f"    def rule{position}(record):")
        if writer.fields:
            lines.append("        " + " = ".join(writer.fields.values()) + " = None")
        lines.append(f"        return {test}")
        names.append(f"rule{position}")
    lines.append("    return (" + "".join(name + ", " for name in names) + ")")
    return list(_build(writer, lines))


def _build(writer: _Writer, lines: list[str]) -> Any:
    arguments = ", ".join(f"k{n}" for n in range(len(writer.constants)))
    source = "\n".join([f"def factory({arguments}):", *lines, ""])
    namespace: dict[str, Any] = {"__builtins__": {}}
    # The source holds no text of any rule (see the module's docstring): only names made here.
    exec(compile(source, "<sigma matcher>", "exec"), namespace)  # noqa: S102
    return namespace["factory"](*writer.constants)


class _Writer:
    """Writes conditions as Python expressions, collecting their constants and field reads."""

    def __init__(self) -> None:
        self.constants: list[Any] = []
        # Per field and view read, the local that holds its values once read.
        self.fields: dict[tuple[str, View], str] = {}
        self._readers: dict[tuple[str, View], str] = {}
        self._known: dict[int, str] = {}

    def constant(self, value: Any) -> str:
        """The name under which the source refers to ``value``."""
        # By identity: every constant is held in ``constants``, so no id is reused meanwhile.
        name = self._known.get(id(value))
        if name is None:
            name = f"k{len(self.constants)}"
            self.constants.append(value)
            self._known[id(value)] = name
        return name

    def expression(self, node: Condition) -> str:
        """``node`` as a Python expression over ``record``."""
        if isinstance(node, FieldTest):
            values, constant = self._field(node.path, node.view), self.constant(node.constant)
            if node.op == "has":
                return f"({constant} in {values})"
            if node.op == "meets":
                return f"(not {constant}.isdisjoint({values}))"
            return f"{self.constant(_TESTS[node.op])}({values}, {constant})"
        if isinstance(node, AllOf):
            return "(" + " and ".join(map(self.expression, node.parts)) + ")"
        if isinstance(node, AnyOf):
            return "(" + " or ".join(map(self.expression, node.parts)) + ")"
        if isinstance(node, Negation):
            return f"(not {self.expression(node.part)})"
        if isinstance(node, Opaque):
            return f"{self.constant(node.test)}(record)"
        raise TypeError(f"no code for a condition of type {type(node).__name__}")

    def _field(self, path: str, view: View) -> str:
        # The values, read the first time a test needs them (a rule that fails earlier never
        # reads the fields of its later tests).
        key = (path, view)
        local = self.fields.get(key)
        if local is None:
            local = self.fields[key] = f"f{len(self.fields)}"
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = self.constant(_reader(path, view))
        return f"({local} if {local} is not None else ({local} := {reader}(record)))"


def _reader(path: str, view: View) -> Reader:
    if view == "text":
        return _text
    reader = FieldReader(path)
    if view == "numbers":
        return _numbers(reader)
    if view == "values":
        return reader.values
    return _lowered(reader)


def _text(record: AzureRecord) -> tuple[str]:
    return (record.text(),)


def _lowered(reader: FieldReader) -> Reader:
    # A field's lower-case texts, read down its keys as spelled: when they lead to one string,
    # that string lowered is all ``reader.lowered`` would find (a boolean, a number or a null:
    # its text, or nothing); when a key is missing in every spelling (and the object is no
    # {"key", "value"} pair), nothing is, which is what most reads of most records find.
    # Anything else (another spelling, a list, an object, JSON in a string) is the general
    # reader's to decide. What is found goes into the record's memo, where the rules the engine
    # then runs on the event (correlations, rules outside the index) find it, as they found what
    # the closures read.
    general, memo_key = reader.lowered, reader.lowered_key
    keys = reader.keys
    if keys is None:
        derive = reader.derived
        return general if derive is None else _derived_lowered(derive, memo_key)
    steps = tuple((key, key.lower()) for key in keys)
    if len(steps) == 2:
        (outer, _), (inner, lower) = steps

        def nested(record: AzureRecord) -> list[str]:
            node = record.data.get(outer)
            if type(node) is dict:
                value = node.get(inner, _MISSING)
                if type(value) is str:
                    found = record.memo[memo_key] = [value.lower()]
                    return found
                if value is _MISSING:
                    if _absent(record, node, lower):
                        found = record.memo[memo_key] = []
                        return found
                else:
                    scalar = _scalar_text(value)
                    if scalar is not None:
                        record.memo[memo_key] = scalar
                        return scalar
            return general(record)

        return nested

    def read(record: AzureRecord) -> list[str]:
        node = _down(record, steps)
        if type(node) is str:
            found = record.memo[memo_key] = [node.lower()]
            return found
        scalar = [] if node is _MISSING else _scalar_text(node)
        if scalar is None:
            return general(record)
        record.memo[memo_key] = scalar
        return scalar

    return read


def _down(record: AzureRecord, steps: tuple[tuple[str, str], ...]) -> Any:
    # The value down ``steps`` as spelled; ``_MISSING`` when a key is missing in every
    # spelling; ``_GENERAL`` when the general reader must decide (another spelling, a list or
    # JSON text on the way).
    node: Any = record.data
    for key, lower in steps:
        if type(node) is not dict:
            return _GENERAL
        child = node.get(key, _MISSING)
        if child is _MISSING:
            return _MISSING if _absent(record, node, lower) else _GENERAL
        node = child
    return node


def _scalar_text(value: Any) -> list[str] | None:
    # What ``FieldReader.lowered`` finds in a field holding one boolean, number or null (None
    # for anything else): ``text_of``'s text, already in lower case.
    kind = type(value)
    if kind is bool:
        return ["true" if value else "false"]
    if kind is int or kind is float:
        return [str(value)]
    if value is None:
        return []
    return None


def _numbers(reader: FieldReader) -> Reader:
    # A field's numbers, read down its keys as spelled as ``_lowered`` reads texts: one number
    # or numeric text (a sign-in's ``resultType``, ``errorCode``), or a key missing in every
    # spelling; anything else takes ``reader.numbers``.
    general, memo_key = reader.numbers, reader.number_key
    keys = reader.keys
    if keys is None:
        return general
    steps = tuple((key, key.lower()) for key in keys)

    def read(record: AzureRecord) -> list[Any]:
        node = _down(record, steps)
        kind = type(node)
        if kind is int or kind is float:
            found = [node]
        elif node is _MISSING:
            found = []
        elif kind is str or kind is bool or node is None:
            number = number_of(node)
            found = [] if number is None else [number]
        else:
            return general(record)
        record.memo[memo_key] = found
        return found

    return read


def _derived_lowered(derive: Derived, memo_key: str) -> Reader:
    # A ``hubsight:`` field's texts, lowered as ``FieldReader.lowered`` lowers them, without
    # first keeping its values in the record's memo.
    def read(record: AzureRecord) -> list[str]:
        values = derive(record)
        if len(values) == 1 and type(values[0]) is str:
            found = [values[0].lower()]
        else:
            found = [text.lower() for text in map(text_of, values) if text is not None]
        record.memo[memo_key] = found
        return found

    return read


def _absent(record: AzureRecord, node: dict[str, Any], lower: str) -> bool:
    # No key of ``node`` is spelled ``lower`` in any case, and it is no {"key", "value"} pair
    # whose key a path step could name (see ``record._child``).
    return lower not in record.spellings(node) and _PAIR_KEY not in node
