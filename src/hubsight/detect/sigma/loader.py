"""Sigma rule files in, detection rules out, with the reason for every file that does not load."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from hubsight.detect.base import (
    EventKind,
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.detect.sigma.backend import Predicate, PredicateBackend, required_by_any
from hubsight.detect.sigma.fields import SERVICES
from hubsight.detect.sigma.pipeline import PRODUCT, azure_pipeline
from hubsight.detect.sigma.record import RecordCache
from hubsight.parsing.event import Event, LogSet

LOADED = "loaded"
_SUFFIXES = (".yml", ".yaml")
_LEVELS = {
    "informational": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


class SigmaConfig(RuleConfig):
    """Sigma rules have no thresholds; one alert per user (or IP) per hour."""


class SigmaDetection(Rule[SigmaConfig]):
    """A converted Sigma rule; ``SigmaLoader`` makes one subclass per rule to carry its meta."""

    config_type = SigmaConfig

    def __init__(
        self,
        config: SigmaConfig,
        *,
        predicate: Predicate,
        categories: frozenset[str],
        records: RecordCache,
        author: str | None,
        operations: frozenset[str] | None = None,
        operation_log_sets: frozenset[LogSet] = frozenset(),
    ) -> None:
        super().__init__(config)
        self._predicate = predicate
        self._categories = categories
        # The operations the rule can fire on (lowered), when its condition names them: the
        # engine then never hands it other events (most activity rules name one or two).
        self._operations = operations
        self._operation_log_sets = operation_log_sets
        self._records = records
        # The Detection Rule License of SigmaHQ's rules asks that alerts name the rule's author.
        self._context = {"sigma_author": author} if author else {}

    def reads(self, kind: EventKind) -> bool:
        """The log sets of the rule's service, and its operations when the condition names them."""
        operations = self._operations
        return super().reads(kind) and (
            operations is None
            or kind.log_set not in self._operation_log_sets
            or (kind.operation or "").lower() in operations
        )

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Run the rule's predicate on the event's raw record."""
        # A plain function, not a generator: most events fire nothing, and cheaply.
        if (event.category or "").lower() not in self._categories:
            return ()
        record = self._records.record(event)
        if record is None or not self._predicate(record):
            return ()
        who = event.user or event.source_ip or "tenant"
        finding = Finding(
            entity=who,
            title=f"{self.meta.title} ({who})",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=event.user,
            source_ip=event.source_ip,
            context=dict(self._context),
        )
        return (finding,)

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Sigma rules bring no examples; tests/detect/test_sigma.py runs SigmaHQ's."""
        return ()


@dataclass(frozen=True, slots=True)
class SigmaLoad:
    """The outcome of loading one Sigma file: the rule, or None and the reason."""

    path: Path
    rule: SigmaDetection | None
    reason: str
    rule_id: str | None


class SigmaLoader:
    """Converts Sigma files with one pySigma backend; its rules share one record cache."""

    def __init__(self) -> None:
        self._backend = PredicateBackend(azure_pipeline())
        self._records = RecordCache()

    def load_file(self, path: Path) -> SigmaLoad:
        """Parse, process and convert one rule file."""
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return SigmaLoad(path, None, f"cannot read the file: {exc}", None)
        try:
            rules = SigmaCollection.from_yaml(text, resolve_references=False).rules
        except (SigmaError, yaml.YAMLError) as exc:
            return SigmaLoad(path, None, f"not a valid Sigma rule: {_message(exc)}", None)
        if len(rules) != 1:
            reason = (
                f"{len(rules)} rules in one file; put each rule in its own file"
                if rules
                else "no Sigma rule in the file"
            )
            return SigmaLoad(path, None, reason, None)
        sigma = rules[0]
        rule_id = f"sigma.{sigma.id or path.stem}"
        if not isinstance(sigma, SigmaRule):
            reason = (
                "correlation rules are not supported; count events with a threshold "
                "custom alert in detect.toml instead"
            )
            return SigmaLoad(path, None, reason, rule_id)
        try:
            predicates: list[Predicate] = self._backend.convert_rule(sigma)
        except (SigmaError, TypeError) as exc:
            return SigmaLoad(path, None, _message(exc), rule_id)
        conditions = [condition.parsed for condition in sigma.detection.parsed_condition]
        return SigmaLoad(path, self._rule(sigma, rule_id, predicates, conditions), LOADED, rule_id)

    def _rule(
        self,
        sigma: SigmaRule,
        rule_id: str,
        predicates: list[Predicate],
        conditions: list[Any],
    ) -> SigmaDetection:
        service = SERVICES[sigma.logsource.service or ""]
        technique = next(
            (t.name.upper() for t in sigma.tags if t.namespace == "attack" and t.name[:1] == "t"),
            "",
        )
        level = sigma.level.name.lower() if sigma.level is not None else "medium"
        meta = RuleMeta(
            id=rule_id,
            title=sigma.title,
            description=sigma.description or sigma.title,
            severity=_LEVELS.get(level, Severity.MEDIUM),
            technique=technique,
            log_sets=service.log_sets,
            runbook="; ".join(str(fp) for fp in sigma.falsepositives or ())
            or f"See the Sigma rule ({PRODUCT}/{service.name}).",
        )
        cls = cast(
            type[SigmaDetection], type(f"Sigma_{rule_id}", (SigmaDetection,), {"meta": meta})
        )
        return cls(
            SigmaConfig(),
            predicate=predicates[0] if len(predicates) == 1 else _any_of(tuple(predicates)),
            categories=service.categories,
            records=self._records,
            author=sigma.author,
            # The rule fires when any of its conditions holds.
            operations=required_by_any(conditions, "operationName")
            if service.operation_log_sets
            else None,
            operation_log_sets=service.operation_log_sets,
        )


def _any_of(conditions: tuple[Predicate, ...]) -> Predicate:
    # A rule with a list of conditions fires when any of them holds.
    return lambda record: any(condition(record) for condition in conditions)


def _message(exc: Exception) -> str:
    # SigmaError appends " in <location>" to str(); the loader names the file already.
    text = exc.args[0] if isinstance(exc, SigmaError) and exc.args else exc
    return " ".join(str(text).split())


def load_sigma_rules(folder: Path) -> list[SigmaLoad]:
    """Load every ``*.yml`` / ``*.yaml`` under ``folder``, each with whether and why not."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    loader = SigmaLoader()
    return [loader.load_file(path) for path in paths]


def load_sigma_file(path: Path) -> SigmaLoad:
    """Load one Sigma rule file."""
    return SigmaLoader().load_file(path)
