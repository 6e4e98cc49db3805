"""A Sigma rule as a LEQL query, to open it in Log Search ("Open in Log Search").

pySigma's text-query backend with LEQL's syntax, after the same processing pipeline as the
detection engine's, so fields land on the raw record's paths (``properties.appDisplayName``)
that LEQL reads directly. Sigma compares case-insensitively unless a rule says ``|cased``:
equality becomes ``NOCASE(...)``, prefixes and substrings ``ISTARTS-WITH`` and ``ICONTAINS``.
The query is a starting point for an analyst: LEQL reads a path's first value where the engine
reads every element of a list; ``|endswith`` and inner wildcards become anchored regular
expressions. ``rules hunt`` gives the exact answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import yaml
from sigma.conditions import ConditionAND, ConditionItem, ConditionNOT, ConditionOR
from sigma.conversion.base import TextQueryBackend
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import CompareOperators

from hubsight.detect.sigma.fields import SERVICES, VIRTUAL_PREFIX
from hubsight.detect.sigma.pipeline import azure_pipeline
from hubsight.errors import ConfigError


class LeqlBackend(TextQueryBackend):
    """Sigma conditions as a LEQL expression."""

    name: ClassVar[str] = "hubsight LEQL"
    formats: ClassVar[dict[str, str]] = {"default": "LEQL for hubsight's Log Search"}
    requires_pipeline: ClassVar[bool] = True

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    group_expression: ClassVar[str] = "({expr})"
    or_token: ClassVar[str] = "OR"  # noqa: S105 - a query operator, not a secret
    and_token: ClassVar[str] = "AND"  # noqa: S105 - a query operator, not a secret
    not_token: ClassVar[str] = "NOT"  # noqa: S105 - a query operator, not a secret
    eq_token: ClassVar[str] = " = "  # noqa: S105 - a query operator, not a secret
    eq_expression: ClassVar[str] = "{field} = NOCASE({value})"

    str_quote: ClassVar[str] = '"'
    escape_char: ClassVar[str] = "\\"
    wildcard_multi: ClassVar[str] = "*"
    wildcard_single: ClassVar[str] = "?"
    add_escaped: ClassVar[str] = '"\\'
    bool_values: ClassVar[dict[bool, str | None]] = {True: "true", False: "false"}

    startswith_expression: ClassVar[str] = "{field} ISTARTS-WITH {value}"
    # LEQL has no ends-with or wildcard operator: anchored regular expressions instead.
    endswith_expression: ClassVar[str] = "{field} = /{regex}$/i"
    wildcard_match_expression: ClassVar[str] = "{field} = /^{regex}$/i"
    case_sensitive_endswith_expression: ClassVar[str] = "{field} = /{regex}$/"
    contains_expression: ClassVar[str] = "{field} ICONTAINS {value}"
    case_sensitive_match_expression: ClassVar[str] = "{field} = {value}"
    case_sensitive_startswith_expression: ClassVar[str] = "{field} STARTS-WITH {value}"
    case_sensitive_contains_expression: ClassVar[str] = "{field} CONTAINS {value}"
    re_expression: ClassVar[str] = "{field} = /{regex}/"
    re_escape_char: ClassVar[str] = "\\"
    re_escape: ClassVar[list[str]] = ["/"]
    cidr_expression: ClassVar[str] = "{field} = IP({value})"
    compare_op_expression: ClassVar[str] = "{field} {operator} {value}"
    compare_operators: ClassVar[dict[CompareOperators, str]] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
    }
    field_null_expression: ClassVar[str] = "NOT {field}"
    field_exists_expression: ClassVar[str] = "{field}"
    field_not_exists_expression: ClassVar[str] = "NOT {field}"
    convert_or_as_in: ClassVar[bool] = True
    convert_and_as_in: ClassVar[bool] = False
    in_expressions_allow_wildcards: ClassVar[bool] = False
    field_in_list_expression: ClassVar[str] = "{field} {op} [{list}]"
    or_in_operator: ClassVar[str] = "IIN"
    list_separator: ClassVar[str] = ", "
    unbound_value_str_expression: ClassVar[str] = "{value}"
    unbound_value_num_expression: ClassVar[str] = "{value}"
    unbound_value_re_expression: ClassVar[str] = "/{value}/"


_VIRTUAL = re.compile(re.escape(VIRTUAL_PREFIX) + r"([a-z_]+)")


def rule_leql(path: Path, document: int = 1) -> str:
    """The LEQL query of the ``document``-th rule of a Sigma file (refused with the reason)."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d]
        rule = SigmaRule.from_dict(docs[document - 1])
        queries = LeqlBackend(azure_pipeline()).convert_rule(rule)
    except (SigmaError, IndexError, yaml.YAMLError, OSError) as exc:
        raise ConfigError(
            f"{path.name} (document {document}) has no LEQL form: {exc}",
            hint="hunt it instead: hubsight rules hunt RULE_OR_FILE",
        ) from None
    service = SERVICES[str(rule.logsource.service).lower()]
    categories = ", ".join(f'"{c}"' for c in sorted(service.categories))
    # Derived fields read normalized ones of the same name (``hubsight:user`` is ``user``).
    body = " OR ".join("(" + _VIRTUAL.sub(r"\1", str(q)) + ")" for q in queries)
    return f"where(category IIN [{categories}] AND ({body}))"
