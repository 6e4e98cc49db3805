"""A pySigma backend whose queries are conditions over raw Azure records.

The detection engine runs Sigma rules per event as events stream by, so a rule converts to a
tree of tests (``sigma.condition``) that becomes Python code, not to a query text: no parsing
and no SQL per event. pySigma resolves the condition (``1 of selection_*``, modifiers, value
expansions) and runs the processing pipeline; this backend turns each condition node into a
node of that tree. Strings compare case-insensitively
unless the rule says ``|cased``; plain equality, prefixes, suffixes and substrings avoid
regular expressions, and OR-lists of plain values on one field become a set lookup. Features
that cannot work on single events (timestamp parts, query placeholders, correlations) raise
``SigmaFeatureNotSupportedByBackendError``, which the loader reports as the rule's reason.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import Backend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from hubsight.detect.sigma.condition import (
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Negation,
    Op,
    Opaque,
)
from hubsight.detect.sigma.record import AzureRecord, FieldReader, text_of

V = TypeVar("V", bound=SigmaType)
ValueTest = Callable[[Any], bool]
TextTest = Callable[[str], bool]

_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


def _unsupported(feature: str) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(f"{feature} is not supported by hubsight")


class PredicateBackend(Backend):
    """Converts each condition of a Sigma rule into a ``Condition`` over an ``AzureRecord``."""

    name: ClassVar[str] = "hubsight predicates"
    formats: ClassVar[dict[str, str]] = {"default": "Python predicates over raw Azure records"}
    convert_or_as_in: ClassVar[bool] = True
    explicit_not_exists_expression: ClassVar[bool] = True

    def __init__(self, pipeline: ProcessingPipeline) -> None:
        super().__init__(processing_pipeline=pipeline)

    # Boolean structure.

    def convert_condition_and(self, cond: ConditionAND, state: ConversionState) -> Condition:
        """All of the parts."""
        return _single(AllOf(self._parts(cond.args, state)))

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Condition:
        """Any of the parts."""
        return _single(AnyOf(self._parts(cond.args, state)))

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Condition:
        """The negation of the single part."""
        return Negation(self.convert_condition(cond.args[0], state))

    def _parts(self, args: Sequence[Any], state: ConversionState) -> tuple[Condition, ...]:
        return tuple(p for p in (self.convert_condition(a, state) for a in args) if p is not None)

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        """A set lookup for OR-lists of plain, case-insensitive values on one field."""
        return super().decide_convert_condition_as_in_expression(cond, state) and not any(
            isinstance(arg.value, SigmaCasedString)
            for arg in cond.args
            if isinstance(arg, ConditionFieldEqualsValueExpression)
        )

    def convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> Condition:
        """Whether any value of the field is one of the listed values."""
        args = [arg for arg in cond.args if isinstance(arg, ConditionFieldEqualsValueExpression)]
        texts = frozenset(
            _plain(arg.value).lower() for arg in args if isinstance(arg.value, SigmaString)
        )
        numbers = frozenset(arg.value.number for arg in args if isinstance(arg.value, SigmaNumber))
        path = _path(args[0].field)
        as_text = FieldTest(path, "lowered", "meets", texts)
        if not numbers:
            return as_text
        return AnyOf((as_text, FieldTest(path, "numbers", "meets", numbers)))

    # field: value

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Case-insensitive string match, wildcards included."""
        value = _value(cond, SigmaString)
        # The texts tested are lower case already: only the rule's value is folded.
        op, constant = _string_test(value, cased=False)
        return FieldTest(_path(cond.field), "lowered", op, constant)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Case-sensitive string match (``|cased``)."""
        op, constant = _string_test(_value(cond, SigmaString), cased=True)
        return _field(cond.field, _on_text(_text_test(op, constant)))

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Numeric equality; numbers held as text count."""
        return FieldTest(_path(cond.field), "numbers", "has", _value(cond, SigmaNumber).number)

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """A boolean, or its text (``"false"``)."""
        wanted = "true" if _value(cond, SigmaBool).boolean else "false"
        return _field(cond.field, lambda value: (text_of(value) or "").lower() == wanted)

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """A regular expression found anywhere in the value (``|re``)."""
        search = _regex(_value(cond, SigmaRegularExpression)).search
        return _field(cond.field, _on_text(lambda text: search(text) is not None))

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """An IP address inside the network (``|cidr``); a port after the address is ignored."""
        network = _value(cond, SigmaCIDRExpression).network
        return _field(cond.field, _on_text(lambda text: _in_network(text, network)))

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Numeric comparison (``|lt``, ``|gte``, ...)."""
        value = _value(cond, SigmaCompareExpression)
        compare, limit = _COMPARE[value.op], value.number.number
        return FieldTest(_path(cond.field), "numbers", "call", lambda n: compare(n, limit))

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Two fields with the same value (``|fieldref``), or a prefix / suffix of it."""
        ref = _value(cond, SigmaFieldReference)
        left, right = _reader(cond.field), _reader(ref.field)

        def same(a: str, b: str) -> bool:
            if ref.starts_with:
                return a.startswith(b)
            if ref.ends_with:
                return a.endswith(b)
            return a == b

        def predicate(record: AzureRecord) -> bool:
            others = right.lowered(record)
            return any(same(text, other) for text in left.lowered(record) for other in others)

        return Opaque(predicate)

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """The field is absent or null."""
        reader = _reader(cond.field)
        return Opaque(lambda record: all(value is None for value in reader.values(record)))

    def convert_condition_field_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """The field has a non-null value (``|exists: true``)."""
        reader = _reader(cond.field)
        return Opaque(lambda record: any(value is not None for value in reader.values(record)))

    def convert_condition_field_not_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """The field is absent or null (``|exists: false``)."""
        return self.convert_condition_field_eq_val_null(cond, state)

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Not supported: raises."""
        part = _value(cond, SigmaTimestampPart)
        raise _unsupported(f"the |{part.timestamp_part.name.lower()} modifier")

    def convert_condition_field_eq_query_expr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Condition:
        """Not supported: raises."""
        raise _unsupported(f"a query expression on field {cond.field}")

    # Keywords: values without a field, searched in the whole record.

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Condition:
        """The keyword anywhere in the record's text, case-insensitively."""
        value = _value(cond, SigmaString)
        _no_placeholders(value)
        if not value.contains_special():
            return FieldTest("", "text", "contains", _plain(value).lower())
        search = re.compile(str(value.to_regex().regexp), re.IGNORECASE | re.DOTALL).search
        return Opaque(lambda record: search(record.text()) is not None)

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Condition:
        """The number anywhere in the record's text."""
        return FieldTest("", "text", "contains", str(cond.value).lower())

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Condition:
        """The regular expression anywhere in the record's text."""
        search = _regex(_value(cond, SigmaRegularExpression)).search
        return Opaque(lambda record: search(record.raw_text()) is not None)

    def convert_condition_query_expr(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Condition:
        """Not supported: raises."""
        raise _unsupported("a query expression")

    # Correlations need windows over many events: hubsight's own rules do that.

    def _no_correlation(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("a correlation rule")

    convert_correlation_event_count_rule = _no_correlation
    convert_correlation_value_count_rule = _no_correlation
    convert_correlation_temporal_rule = _no_correlation
    convert_correlation_temporal_ordered_rule = _no_correlation
    convert_correlation_extended_temporal_rule = _no_correlation
    convert_correlation_extended_temporal_ordered_rule = _no_correlation
    convert_correlation_value_sum_rule = _no_correlation
    convert_correlation_value_avg_rule = _no_correlation
    convert_correlation_value_percentile_rule = _no_correlation
    convert_correlation_value_median_rule = _no_correlation


def _value(
    cond: ConditionFieldEqualsValueExpression | ConditionValueExpression, kind: type[V]
) -> V:
    # pySigma dispatches on the value's type, so this only narrows it for the type checker.
    value = cond.value
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
    return value


def _reader(field: str | None) -> FieldReader:
    if field is None:
        raise _unsupported("a field-less value outside a keyword list")
    return FieldReader(field)


def _path(field: str | None) -> str:
    return _reader(field).path


def _field(field: str | None, test: ValueTest) -> Condition:
    return FieldTest(_path(field), "values", "call", test)


def _single(node: AllOf | AnyOf) -> Condition:
    # A part alone is the node: one call less per event in the closures.
    return node.parts[0] if len(node.parts) == 1 else node


def _on_text(test: TextTest) -> ValueTest:
    def on_text(value: Any) -> bool:
        text = text_of(value)
        return text is not None and test(text)

    return on_text


def _no_placeholders(value: SigmaString) -> None:
    if value.contains_placeholder():
        raise _unsupported(f"the placeholder in {value.to_plain()!r} (|expand)")


def required_values(tree: Any, fields: frozenset[str]) -> frozenset[str] | None:
    """The lowered values one of ``fields`` must equal for the condition ``tree`` to hold.

    None when no such list follows from the tree (a wildcard, a NOT, another field decides):
    the engine then hands the rule every event of its log sets, as before. Numbers count as
    their text.
    """
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        value = tree.value
        if tree.field not in fields:
            return None
        if isinstance(value, SigmaNumber):
            return frozenset({str(value.number)})
        if not isinstance(value, SigmaString) or value.contains_special():
            return None
        return frozenset({_plain(value).lower()})
    if isinstance(tree, ConditionOR):
        return required_by_any(tree.args, fields)
    if isinstance(tree, ConditionAND):
        known = [part for part in (required_values(arg, fields) for arg in tree.args) if part]
        return frozenset.intersection(*known) if known else None
    return None


def required_by_any(trees: Sequence[Any], fields: frozenset[str]) -> frozenset[str] | None:
    """The lowered values one of ``fields`` must equal for any of ``trees`` to hold (above)."""
    parts = [required_values(tree, fields) for tree in trees]
    if not parts or any(part is None for part in parts):
        return None
    return frozenset().union(*(part for part in parts if part is not None))


def _plain(value: SigmaString) -> str:
    _no_placeholders(value)
    return "".join(part for part in value.s if isinstance(part, str))


def _string_test(value: SigmaString, *, cased: bool) -> tuple[Op, Any]:
    # How a text must relate to ``value``: unless ``cased``, the texts are lower case already
    # and only the rule's value is folded. Plain equality, prefixes, suffixes and substrings
    # avoid regular expressions; the rest is a text test ("call").
    _no_placeholders(value)
    fold: Callable[[str], str] = (lambda text: text) if cased else str.lower
    if not value.contains_special():
        return "has", fold(_plain(value))
    parts = value.s
    lead = parts[0] is SpecialChars.WILDCARD_MULTI
    trail = parts[-1] is SpecialChars.WILDCARD_MULTI
    middle = parts[int(lead) : len(parts) - int(trail)]
    if len(middle) == 1 and isinstance(middle[0], str):
        needle = fold(middle[0])
        if lead and trail:
            return "contains", needle
        return ("startswith", needle) if trail else ("endswith", needle)
    flags = re.DOTALL if cased else re.DOTALL | re.IGNORECASE
    fullmatch = re.compile(str(value.to_regex().regexp), flags).fullmatch
    return "call", lambda text: fullmatch(text) is not None


def _text_test(op: Op, constant: Any) -> TextTest:
    # The test of one text that ``_string_test``'s answer stands for.
    if op == "has":
        return lambda text: text == constant
    if op == "contains":
        return lambda text: constant in text
    if op == "startswith":
        return lambda text: text.startswith(constant)
    if op == "endswith":
        return lambda text: text.endswith(constant)
    test: TextTest = constant
    return test


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    flags = 0
    for flag in value.flags:
        flags |= value.sigma_to_python_flags[flag]
    return re.compile(str(value.regexp), flags)


def _in_network(text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    # Azure writes callerIpAddress as "a.b.c.d:port" or "[v6]:port" in some categories.
    host = text.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        return ipaddress.ip_address(host) in network
    except ValueError:
        return False
