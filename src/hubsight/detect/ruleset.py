"""Build the rules to run: built-ins, shipped content and imported Sigma rules, with settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Example, Rule
from hubsight.detect.content import content_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules import BUILTIN_RULES
from hubsight.detect.settings import (
    DetectConfig,
    RuleExceptions,
    RuleSettings,
    effective,
    refusal,
)
from hubsight.errors import NotFoundError, SettingError


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules to run, their exceptions, and the rules that are switched off."""

    rules: list[Rule[Any]]
    exceptions: dict[str, RuleExceptions]
    disabled: list[str]


def rule_classes() -> tuple[type[Rule[Any]], ...]:
    """The rules hubsight ships: the built-in ones, then the Sigma content by family."""
    return BUILTIN_RULES + content_rules()


def rule_class(rule_id: str) -> type[Rule[Any]]:
    """The shipped (built-in or content) rule class with this id."""
    for cls in rule_classes():
        if cls.meta.id == rule_id:
            return cls
    raise NotFoundError(f"no rule {rule_id!r}", hint="list rule ids with `hubsight rules list`")


def build_rule(cls: type[Rule[Any]], thresholds: dict[str, Any]) -> Rule[Any]:
    """An instance of ``cls`` with ``thresholds`` validated against its config type."""
    try:
        config = cls.config_type.model_validate(thresholds)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        properties = settings_schema(cls)
        hint = (
            setting_hint(properties[field])
            if field in properties
            else f"valid keys: {', '.join(cls.config_type.model_fields)}"
        )
        raise SettingError(
            f"thresholds of rule {cls.meta.id}: {refusal(err)}",
            field=field,
            hint=hint,
        ) from exc
    return cls(config)


def settings_schema(cls: type[Rule[Any]]) -> dict[str, dict[str, Any]]:
    """The JSON schema of each of a rule's settings (thresholds, windows, allow-lists)."""
    properties: dict[str, dict[str, Any]] = cls.config_type.model_json_schema()["properties"]
    return properties


def setting_hint(prop: dict[str, Any]) -> str:
    """What a setting takes, from its JSON schema: "a whole number over 0 (default 10)"."""
    if prop.get("type") == "array":
        return f"a list, one per line (default {', '.join(map(str, prop.get('default', [])))})"
    words = ["a whole number" if prop.get("type") == "integer" else "a number"]
    if "exclusiveMinimum" in prop:
        words.append(f"over {prop['exclusiveMinimum']}")
    elif "minimum" in prop:
        words.append(f"from {prop['minimum']}")
    if "exclusiveMaximum" in prop:
        words.append(f"under {prop['exclusiveMaximum']}")
    elif "maximum" in prop:
        words.append(f"up to {prop['maximum']}")
    return f"{' '.join(words)} (default {prop.get('default')})"


def build_ruleset(
    config: DetectConfig,
    stored: dict[str, RuleSettings],
    *,
    extra: list[Rule[Any]] | None = None,
    only: set[str] | None = None,
) -> RuleSet:
    """Instantiate every enabled rule (all rules in ``only`` when given) with its settings."""
    rules: list[Rule[Any]] = []
    exceptions: dict[str, RuleExceptions] = {}
    disabled: list[str] = []
    for cls in rule_classes():
        rule_id = cls.meta.id
        settings = effective(config, stored, rule_id)
        wanted = rule_id in only if only is not None else settings.enabled is not False
        if not wanted:
            disabled.append(rule_id)
            continue
        rules.append(build_rule(cls, settings.thresholds))
        exceptions[rule_id] = _checked(rule_id, settings.exceptions)
    for rule in extra or []:
        settings = effective(config, stored, rule.meta.id)
        if settings.enabled is False:
            disabled.append(rule.meta.id)
        else:
            rules.append(rule)
            # Checked here like a shipped rule's: unchecked, a bad address failed the rule on
            # every event it matched, and it never alerted.
            exceptions[rule.meta.id] = _checked(rule.meta.id, settings.exceptions)
    return RuleSet(rules=rules, exceptions=exceptions, disabled=disabled)


def _checked(rule_id: str, exceptions: RuleExceptions) -> RuleExceptions:
    """``exceptions`` once their addresses parse; the error names the rule."""
    try:
        exceptions.validate_ips()
    except SettingError as exc:
        raise SettingError(f"{rule_id}: {exc.message}", field=exc.field, hint=exc.hint) from exc
    return exceptions


def run_example(rule: Rule[Any], example: Example) -> list[Alert]:
    """The alerts of ``rule`` on one of its examples, in a fresh in-memory engine."""
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        [rule],
        options=EngineOptions(persist=False, learning=timedelta(0)),
    )
    alerts = engine.process(example.events)
    if example.check_at is not None:
        alerts += engine.tick(example.check_at)
    engine.db.close()
    return [a for a in alerts if a.rule_id == rule.meta.id]


def rules_dir_default(data_dir: Path) -> Path:
    """Where imported (Sigma) rules live in a data directory."""
    return data_dir / "rules"
