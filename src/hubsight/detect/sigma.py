"""Sigma rules for the ``azure`` product, loaded with pySigma and run on raw Azure records.

pySigma parses the YAML and the condition; this module compiles the parsed condition into a
Python predicate over the raw record, after mapping Sigma's field names (the Log Analytics
column names the Sigma azure rules use, such as ``ResultType`` or ``ActivityDisplayName``) onto
the record's own keys. A rule that uses something the compiler does not support is reported as
not loaded, with the reason; it never half-works.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma import conditions as sc
from sigma import types as st
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.parsing.event import Event, LogSet

Record = dict[str, Any]
Predicate = Callable[[Record, bytes], bool]

# Sigma azure services -> (log sets, Azure categories, lower-cased) they read.
_SERVICES: dict[str, tuple[frozenset[LogSet], frozenset[str]]] = {
    "signinlogs": (
        frozenset({LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION}),
        frozenset(
            {
                "signinlogs",
                "noninteractiveusersigninlogs",
                "serviceprincipalsigninlogs",
                "managedidentitysigninlogs",
                "adfssigninlogs",
            }
        ),
    ),
    "auditlogs": (frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}), frozenset({"auditlogs"})),
    "pim": (frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}), frozenset({"auditlogs"})),
    "activitylogs": (
        frozenset(
            {
                LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
                LogSet.CLOUD_SERVICE_ACTIVITY,
                LogSet.THIRD_PARTY_ALERTS,
            }
        ),
        frozenset(),  # every Activity Log category
    ),
    "riskdetection": (
        frozenset({LogSet.THIRD_PARTY_ALERTS}),
        frozenset({"userriskevents", "riskdetection", "riskyusers"}),
    ),
}

_STATUS = "hubsight_status"

# Log Analytics column names used by Sigma's azure rules -> paths in the Event Hub record,
# tried in order. Anything else is looked up as a dotted path at the top, then under properties.
_FIELD_PATHS: dict[str, tuple[str, ...]] = {
    "resulttype": ("resultType", "properties.status.errorCode"),
    "resultdescription": ("resultDescription", "properties.status.failureReason"),
    # Sign-in rules compare Status with Success / Failure: derived from the normalized result.
    "status": (_STATUS, "status"),
    "activitydisplayname": ("properties.activityDisplayName", "operationName"),
    "operationname": ("operationName", "properties.activityDisplayName"),
    "operationnamevalue": ("operationName",),
    "categoryvalue": ("category",),
    "category": ("properties.category", "category"),
    "resourceid": ("resourceId",),
    "initiatedby": ("properties.initiatedBy",),
    "targetresources": ("properties.targetResources",),
    "target": ("properties.targetResources",),
    "loggedbyservice": ("properties.loggedByService",),
    "result": ("properties.result", "resultType"),
    "caller": ("caller", "identity.claims.name"),
    "callipaddress": ("callerIpAddress",),
}

_LEVELS = {
    "informational": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


class SigmaLoadError(Exception):
    """A Sigma rule that cannot run here; the message says why."""


class SigmaConfig(RuleConfig):
    """Sigma rules have no thresholds; one alert per user/IP per hour."""


class SigmaDetection(Rule[SigmaConfig]):
    """A compiled Sigma rule (one subclass per rule, made by ``compile_sigma``)."""

    config_type = SigmaConfig
    predicate: Predicate
    categories: frozenset[str]

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Run the compiled condition on the raw record."""
        if self.categories and (event.category or "").lower() not in self.categories:
            return
        raw = memoryview(event.raw).tobytes()
        try:
            record = json.loads(raw)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        if event.result is not None:
            record[_STATUS] = "Success" if event.result == "SUCCESS" else "Failure"
        if not self.predicate(record, raw.lower()):
            return
        who = event.user or event.source_ip or "tenant"
        yield Finding(
            entity=who,
            title=f"{self.meta.title} ({who})",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=event.user,
            source_ip=event.source_ip,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Sigma rules bring no examples of their own."""
        return ()


@dataclass(frozen=True, slots=True)
class SigmaLoad:
    """The outcome of loading one Sigma file."""

    path: Path
    rule: SigmaDetection | None
    reason: str
    rule_id: str | None


def load_sigma_rules(folder: Path) -> list[SigmaLoad]:
    """Load every ``*.yml`` / ``*.yaml`` under ``folder``, each with whether and why not."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return [load_sigma_file(path) for path in paths]


def load_sigma_file(path: Path) -> SigmaLoad:
    """Load and compile one Sigma rule file."""
    try:
        sigma = SigmaRule.from_yaml(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return SigmaLoad(path, None, f"cannot read the file: {exc}", None)
    except (SigmaError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        return SigmaLoad(path, None, f"not a valid Sigma rule: {reason}", None)
    rule_id = f"sigma.{sigma.id or path.stem}"
    try:
        return SigmaLoad(path, compile_sigma(sigma, rule_id), "loaded", rule_id)
    except (SigmaLoadError, SigmaError) as exc:
        return SigmaLoad(path, None, str(exc), rule_id)


def compile_sigma(sigma: SigmaRule, rule_id: str) -> SigmaDetection:
    """A rule instance running ``sigma``; SigmaLoadError when it cannot run here."""
    source = sigma.logsource
    if (source.product or "").lower() != "azure":
        raise SigmaLoadError(f"logsource product {source.product!r} is not azure")
    service = (source.service or "").lower()
    if service not in _SERVICES:
        raise SigmaLoadError(
            f"logsource service {source.service!r} is not one of {', '.join(sorted(_SERVICES))}"
        )
    parsed = [c.parse() for c in sigma.detection.parsed_condition]
    predicates = [_compile(node) for node in parsed]
    log_sets, categories = _SERVICES[service]
    technique = next(
        (t.name.upper() for t in sigma.tags if t.namespace == "attack" and t.name[:1] == "t"), ""
    )
    level = sigma.level.name.lower() if sigma.level is not None else "medium"
    meta = RuleMeta(
        id=rule_id,
        title=sigma.title,
        description=sigma.description or sigma.title,
        severity=_LEVELS.get(level, Severity.MEDIUM),
        technique=technique,
        log_sets=log_sets,
        runbook="; ".join(str(fp) for fp in sigma.falsepositives or ()) or "See the Sigma rule.",
    )

    def predicate(record: Record, lowered: bytes) -> bool:
        return any(p(record, lowered) for p in predicates)

    cls = type(
        f"Sigma_{rule_id}",
        (SigmaDetection,),
        {"meta": meta, "predicate": staticmethod(predicate), "categories": categories},
    )
    return cls(SigmaConfig())  # type: ignore[no-any-return]


def _compile(node: Any) -> Predicate:
    if isinstance(node, sc.ConditionAND):
        parts = [_compile(a) for a in node.args]
        return lambda r, raw: all(p(r, raw) for p in parts)
    if isinstance(node, sc.ConditionOR):
        parts = [_compile(a) for a in node.args]
        return lambda r, raw: any(p(r, raw) for p in parts)
    if isinstance(node, sc.ConditionNOT):
        inner = _compile(node.args[0])
        return lambda r, raw: not inner(r, raw)
    if isinstance(node, sc.ConditionFieldEqualsValueExpression):
        match = _value_matcher(node.value)
        paths = _paths(node.field)
        return lambda r, raw: any(match(v) for v in _resolve(r, paths))
    if isinstance(node, sc.ConditionValueExpression):
        if isinstance(node.value, st.SigmaString):
            needle = node.value.to_plain().lower().encode()
            return lambda r, raw: needle in raw
        raise SigmaLoadError(f"keyword of type {type(node.value).__name__} is not supported")
    raise SigmaLoadError(f"condition element {type(node).__name__} is not supported")


def _value_matcher(value: Any) -> Callable[[Any], bool]:
    if isinstance(value, st.SigmaNull):
        return lambda v: v is None or v == ""
    if isinstance(value, st.SigmaExists):
        return lambda v: (v is not None) is value.exists
    if isinstance(value, st.SigmaString):
        regex = value.to_regex()
        flags = 0 if isinstance(value, st.SigmaCasedString) else re.IGNORECASE
        pattern = re.compile(str(regex.regexp), flags | re.DOTALL)
        return lambda v: v is not None and pattern.fullmatch(_text(v)) is not None
    if isinstance(value, st.SigmaRegularExpression):
        value.compile()  # raises SigmaRegularExpressionError (a SigmaError) when invalid
        flags = 0
        for flag in value.flags:
            flags |= value.sigma_to_python_flags[flag]
        regexp = re.compile(str(value.regexp), flags)
        return lambda v: v is not None and regexp.search(_text(v)) is not None
    if isinstance(value, st.SigmaNumber):
        number = value.number
        return lambda v: _number(v) == number
    if isinstance(value, st.SigmaBool):
        return lambda v: _text(v).lower() == str(value.boolean).lower()
    if isinstance(value, st.SigmaCompareExpression):
        return _comparison(value)
    if isinstance(value, st.SigmaCIDRExpression):
        network = ipaddress.ip_network(value.cidr, strict=False)
        return lambda v: _in_network(v, network)
    raise SigmaLoadError(f"value of type {type(value).__name__} is not supported")


def _comparison(value: st.SigmaCompareExpression) -> Callable[[Any], bool]:
    ops = st.SigmaCompareExpression.CompareOperators
    limit = value.number.number
    compare: dict[Any, Callable[[float, float], bool]] = {
        ops.LT: lambda a, b: a < b,
        ops.LTE: lambda a, b: a <= b,
        ops.GT: lambda a, b: a > b,
        ops.GTE: lambda a, b: a >= b,
        ops.NEQ: lambda a, b: a != b,
    }
    op = compare[value.op]

    def check(v: Any) -> bool:
        number = _number(v)
        return number is not None and op(number, limit)

    return check


def _paths(field: str | None) -> tuple[tuple[str, ...], ...]:
    if field is None:
        raise SigmaLoadError("a field-less value outside a keyword list is not supported")
    known = _FIELD_PATHS.get(field.lower())
    candidates = known or (field, f"properties.{field}")
    return tuple(tuple(p.lower().split(".")) for p in candidates)


def _resolve(record: Record, paths: tuple[tuple[str, ...], ...]) -> list[Any]:
    for path in paths:
        found = _walk(record, path)
        if found is not _MISSING:
            return (
                found
                if isinstance(found, list) and found and not isinstance(found[0], dict)
                else [found]
            )
    return [None]


_MISSING = object()


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                return _MISSING
        if not isinstance(value, dict):
            return _MISSING
        value = next((v for k, v in value.items() if k.lower() == key), _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value))
    except ValueError:
        return None


def _in_network(value: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(_text(value)) in network
    except ValueError:
        return False
