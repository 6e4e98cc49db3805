"""Sigma files in, detection rules out, with the reason for every document that does not load.

A file may hold several YAML documents: single-event rules and correlation rules, a correlation
next to its base rules as the Sigma specification shows. A correlation may also name base rules
in other files of the same folder. Each document is reported on its own: loaded, or the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule, SigmaRuleBase

from hubsight.detect.base import RuleMeta, Severity
from hubsight.detect.sigma.backend import PredicateBackend, required_by_any
from hubsight.detect.sigma.condition import AnyOf, Condition
from hubsight.detect.sigma.correlation import Base, SigmaCorrelation, expression_of, threshold_of
from hubsight.detect.sigma.detection import SigmaConfig, SigmaDetection
from hubsight.detect.sigma.fields import SERVICES, Service
from hubsight.detect.sigma.index import requirement
from hubsight.detect.sigma.pipeline import PRODUCT, azure_pipeline
from hubsight.detect.sigma.record import RECORDS, FieldReader
from hubsight.parsing.event import LogSet

LOADED = "loaded"
_SUFFIXES = (".yml", ".yaml")
_LEVELS = {
    "informational": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_STREAMED = frozenset(
    {
        SigmaCorrelationType.EVENT_COUNT,
        SigmaCorrelationType.VALUE_COUNT,
        SigmaCorrelationType.TEMPORAL,
        SigmaCorrelationType.TEMPORAL_ORDERED,
    }
)

SigmaRuleType = SigmaDetection | SigmaCorrelation


@dataclass(frozen=True, slots=True)
class SigmaLoad:
    """The outcome of loading one Sigma document: the rule, or None and the reason."""

    path: Path
    rule: SigmaRuleType | None
    reason: str
    rule_id: str | None
    # The document's place in its file (1 for the first).
    document: int = 1
    # True also for a base rule that only feeds correlations (``rule`` is None then).
    loaded: bool = False
    # The rule's Sigma ``name`` (shipped content uses it as the rule id).
    name: str | None = None


class _Refused(Exception):
    """A document that does not load, with the reason."""


@dataclass(slots=True)
class _Doc:
    """One document while a load is under way."""

    path: Path
    document: int
    sigma: SigmaRule | SigmaCorrelationRule | None = None
    rule_id: str | None = None
    reason: str = LOADED
    rule: SigmaRuleType | None = None
    service: Service | None = None
    # The ids of correlations that use this rule without generating its own alerts.
    silenced_by: list[str] = field(default_factory=list)

    def load(self) -> SigmaLoad:
        if self.silenced_by and self.rule is not None:
            users = ", ".join(self.silenced_by)
            reason = (
                f"loaded as a base rule of {users} only (generate: false): no alerts of its own"
            )
            return SigmaLoad(
                self.path, None, reason, self.rule_id, self.document, loaded=True, name=self.name
            )
        return SigmaLoad(
            self.path,
            self.rule,
            self.reason,
            self.rule_id,
            self.document,
            loaded=self.rule is not None,
            name=self.name,
        )

    @property
    def name(self) -> str | None:
        """The Sigma ``name`` of the document's rule."""
        return self.sigma.name if self.sigma is not None else None


class SigmaLoader:
    """Converts Sigma files with one pySigma backend."""

    def __init__(self) -> None:
        self._backend = PredicateBackend(azure_pipeline())

    def load_file(self, path: Path) -> list[SigmaLoad]:
        """Parse, process and convert every document of one file."""
        return self.load_files([path])

    def load_files(self, paths: Iterable[Path]) -> list[SigmaLoad]:
        """Every document of ``paths``; correlations may name base rules in any of the files."""
        docs = [doc for path in paths for doc in _parse(path)]
        for doc in docs:
            if isinstance(doc.sigma, SigmaRule):
                self._convert(doc)
        known: list[SigmaRule | SigmaCorrelationRule | SigmaFilter] = [
            doc.sigma for doc in docs if doc.sigma is not None
        ]
        collection = SigmaCollection(known, resolve_references=False)
        by_rule = {id(doc.sigma): doc for doc in docs if doc.sigma is not None}
        for doc in docs:
            if isinstance(doc.sigma, SigmaCorrelationRule):
                self._correlate(doc, collection, by_rule)
        return [doc.load() for doc in docs]

    def _convert(self, doc: _Doc) -> None:
        sigma = cast(SigmaRule, doc.sigma)
        try:
            converted: list[Condition] = self._backend.convert_rule(sigma)
        except (SigmaError, TypeError) as exc:
            doc.reason = _message(exc)
            return
        conditions = [condition.parsed for condition in sigma.detection.parsed_condition]
        service = doc.service = SERVICES[sigma.logsource.service or ""]
        cls = cast(
            type[SigmaDetection],
            type(
                f"Sigma_{doc.rule_id}",
                (SigmaDetection,),
                {"meta": _meta(sigma, doc, service.log_sets)},
            ),
        )
        doc.rule = cls(
            SigmaConfig(),
            # A rule with a list of conditions fires when any of them holds.
            condition=converted[0] if len(converted) == 1 else AnyOf(tuple(converted)),
            categories=service.categories,
            records=RECORDS,
            author=sigma.author,
            # The rule fires when any of its conditions holds.
            operations=required_by_any(conditions, service.operation_paths)
            if service.operation_log_sets
            else None,
            operation_log_sets=service.operation_log_sets,
            codes=required_by_any(conditions, service.code_paths) if service.code_paths else None,
            requirement=requirement(conditions),
        )

    def _correlate(self, doc: _Doc, collection: SigmaCollection, by_rule: dict[int, _Doc]) -> None:
        sigma = cast(SigmaCorrelationRule, doc.sigma)
        try:
            sigma.resolve_rule_references(collection)
            bases = [by_rule[id(ref.rule)] for ref in sigma.referenced_rules]
            if not sigma.generate:
                for base in bases:
                    base.silenced_by.append(doc.rule_id or "")
            doc.rule = _correlation(sigma, doc, bases)
        except SigmaError as exc:
            doc.reason = _message(exc)
        except _Refused as exc:
            doc.reason = str(exc)


def _parse(path: Path) -> list[_Doc]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [_Doc(path, 1, reason=f"cannot read the file: {exc}")]
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [_Doc(path, 1, reason=f"not a valid Sigma rule: {_message(exc)}")]
    if not documents:
        return [_Doc(path, 1, reason="no Sigma rule in the file")]
    docs = []
    for number, document in enumerate(documents, start=1):
        doc = _Doc(path, number)
        docs.append(doc)
        if not isinstance(document, dict):
            doc.reason = "not a valid Sigma rule: the document is not a mapping of keys"
            continue
        try:
            rules = SigmaCollection.from_dicts([document], resolve_references=False).rules
        except SigmaError as exc:
            doc.reason = f"not a valid Sigma rule: {_message(exc)}"
            continue
        if not rules:
            doc.reason = "a Sigma filter, which hubsight does not apply; put it in the rule"
            continue
        sigma = doc.sigma = rules[0]
        stem = path.stem if number == 1 else f"{path.stem}.{number}"
        doc.rule_id = f"sigma.{sigma.id or sigma.name or stem}"
    return docs


def _correlation(sigma: SigmaCorrelationRule, doc: _Doc, bases: Sequence[_Doc]) -> SigmaCorrelation:
    if sigma.type not in _STREAMED:
        raise _Refused(
            f"{sigma.type.name.lower()} correlations are not supported (supported: event_count, "
            "value_count, temporal, temporal_ordered)"
        )
    for base in bases:
        if isinstance(base.sigma, SigmaCorrelationRule):
            raise _Refused(f"its rule {base.rule_id} is a correlation: chains are not supported")
        if base.rule is None:
            raise _Refused(f"its base rule {base.rule_id} does not load: {base.reason}")
    refs = [ref.reference for ref in sigma.referenced_rules]
    group_by = list(sigma.group_by or ())
    counted_field: str | None = None
    threshold = 1
    expression = None
    if sigma.type in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT):
        threshold = threshold_of(sigma)
        if sigma.type is SigmaCorrelationType.VALUE_COUNT:
            fieldref = getattr(sigma.condition, "fieldref", None)
            if not isinstance(fieldref, str):
                raise _Refused("value_count counts one field: name one in condition.field")
            counted_field = fieldref
    else:
        expression = expression_of(sigma)
    parts = []
    for ref, base in zip(refs, bases, strict=True):
        names = _names(base, ref)
        group = tuple(_readers(sigma, base, names, name) for name in group_by)
        counted = _readers(sigma, base, names, counted_field) if counted_field else ()
        parts.append(
            Base(rule=cast(SigmaDetection, base.rule), names=names, group=group, counted=counted)
        )
    log_sets = frozenset().union(*(base.rule.meta.log_sets for base in bases if base.rule))
    meta = _meta(sigma, doc, log_sets, windowed=True)
    context: dict[str, Any] = {
        "sigma_correlation": sigma.type.name.lower(),
        "sigma_base_rules": [base.rule_id for base in bases],
    }
    if sigma.author:
        context["sigma_author"] = sigma.author
    cls = cast(
        type[SigmaCorrelation], type(f"Sigma_{doc.rule_id}", (SigmaCorrelation,), {"meta": meta})
    )
    return cls(
        SigmaConfig(),
        kind=sigma.type,
        bases=parts,
        group_by=group_by,
        timespan=float(sigma.timespan.seconds),
        threshold=threshold,
        expression=expression,
        context=context,
    )


def _names(base: _Doc, ref: str) -> frozenset[str]:
    # A correlation may name a base rule by its name or its id, in rules, aliases and conditions.
    sigma = cast(SigmaRule, base.sigma)
    return frozenset(n for n in (ref, sigma.name, str(sigma.id) if sigma.id else None) if n)


def _readers(
    sigma: SigmaCorrelationRule, base: _Doc, names: frozenset[str], wanted: str
) -> tuple[FieldReader, ...]:
    field_name = wanted
    alias = sigma.aliases.aliases.get(wanted)
    if alias is not None:
        mapped = [f for ref, f in alias.mapping.items() if ref.reference in names]
        if not mapped:
            raise _Refused(f"alias {wanted} names no field of its rule {base.rule_id}")
        field_name = mapped[0]
    service = cast(Service, base.service)
    paths = service.paths(field_name)
    if paths is None:
        raise _Refused(
            f"field {field_name} is not in {service.records} ({PRODUCT}/{service.name}), the "
            f"records of its rule {base.rule_id}; use {service.columns_hint}"
        )
    return tuple(FieldReader(path) for path in paths)


def _meta(
    sigma: SigmaRuleBase, doc: _Doc, log_sets: frozenset[LogSet], *, windowed: bool = False
) -> RuleMeta:
    technique = next(
        (t.name.upper() for t in sigma.tags if t.namespace == "attack" and t.name[:1] == "t"),
        "",
    )
    level = sigma.level.name.lower() if sigma.level is not None else "medium"
    source = f"{PRODUCT}/{doc.service.name}" if doc.service else "correlation"
    return RuleMeta(
        id=doc.rule_id or "",
        title=sigma.title,
        description=sigma.description or sigma.title,
        severity=_LEVELS.get(level, Severity.MEDIUM),
        technique=technique,
        log_sets=log_sets,
        runbook="; ".join(str(fp) for fp in sigma.falsepositives or ())
        or f"See the Sigma rule ({source}).",
        windowed=windowed,
        # ATT&CK tags name tactics (attack.persistence) and ids (attack.t1098, g0016, s0002).
        tactics=tuple(
            t.name
            for t in sigma.tags
            if t.namespace == "attack" and not (t.name[:1] in "tgs" and t.name[1:2].isdigit())
        ),
    )


def _message(exc: Exception) -> str:
    # SigmaError appends " in <location>" to str(); the loader names the file already.
    text = exc.args[0] if isinstance(exc, SigmaError) and exc.args else exc
    return " ".join(str(text).split())


def load_sigma_rules(folder: Path) -> list[SigmaLoad]:
    """Every document of every ``*.yml`` / ``*.yaml`` under ``folder``, each with its reason."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    return SigmaLoader().load_files(paths)


def load_sigma_file(path: Path) -> list[SigmaLoad]:
    """Load every document of one Sigma file."""
    return SigmaLoader().load_file(path)
