"""The Azure names the detection content waits for, gathered from the rules and their examples.

A rule that waits for an operation Azure never writes cannot fire, and its own examples (written
with the same spelling) will not notice. ``test_azure_names`` checks every name gathered here
against ``tests/data/azure_names.json``: the names checked against Microsoft's documentation,
each with the page that lists it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hubsight.detect.content import CONTENT_DIR
from hubsight.detect.content.examples import examples_path
from hubsight.detect.rules import admin as admin_rules
from hubsight.detect.ruleset import rule_classes
from hubsight.parsing.azure.kubernetes import KUBE_CATEGORIES
from hubsight.parsing.event import LogSet

NAMES_FILE = Path(__file__).parents[1] / "data" / "azure_names.json"

# Which kind of name a field holds, by the logsource service of the rule that reads it.
ARM, AUDIT, KEY_VAULT = "arm", "audit", "keyvault"
_RULE_FIELDS = {
    "activitylogs": ("operationname", ARM),
    "auditlogs": ("activitydisplayname", AUDIT),
    "keyvault": ("operationname", KEY_VAULT),
}
# Which example variable holds the name, by the base record the example builds on.
_EXAMPLE_VARS = {"administrative": ("operation", ARM), "audit": ("activity", AUDIT)}
_EXAMPLE_VARS["keyvault"] = ("operation", KEY_VAULT)


@dataclass(frozen=True, slots=True)
class Use:
    """One name one rule (or one of its examples) waits for."""

    kind: str
    name: str
    where: str


def rule_files() -> list[Path]:
    """Every shipped Sigma rule file."""
    return sorted(CONTENT_DIR.glob("*/*.yml"))


def sigma_uses(path: Path) -> Iterator[Use]:
    """The names the Sigma rules in ``path`` match, with the kind their service makes them."""
    for doc in yaml.safe_load_all(path.read_text("utf-8")):
        service = (doc.get("logsource") or {}).get("service")
        if service not in _RULE_FIELDS:
            continue
        field, kind = _RULE_FIELDS[service]
        for value in _values(doc.get("detection", {}), field):
            yield Use(kind, value, f"{doc['name']} ({path.name})")


def _values(node: Any, field: str) -> Iterator[str]:
    """The string values of ``field`` (any modifier) anywhere in a detection."""
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).split("|")[0].lower() == field:
                yield from (v for v in (value if isinstance(value, list) else [value]))
            else:
                yield from _values(value, field)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item, field)


def example_uses(path: Path) -> Iterator[Use]:
    """The names the examples of the rule in ``path`` send, fires and quiet alike."""
    doc = json.loads(examples_path(path).read_text("utf-8"))
    for verdict in ("fires", "quiet"):
        for spec in doc.get(verdict, ()):
            for part in spec.get("records", [spec]):
                record = part.get("record", doc["record"]) if "records" in spec else doc["record"]
                var, kind = _EXAMPLE_VARS.get(record, ("", ""))
                value = part.get(var, spec.get(var)) if var else None
                if isinstance(value, str):
                    yield Use(kind, value, f"{path.stem} example {spec.get('name')!r}")


def python_uses() -> Iterator[Use]:
    """The names the built-in rules wait for: their ``operations`` and ``unconditional``."""
    for cls in rule_classes():
        names: set[str] = set()
        for attr in ("operations", "unconditional"):
            value = getattr(cls, attr, None)
            if isinstance(value, frozenset):
                names |= value
        for name in names:
            yield Use(kind_of(name), name, cls.meta.id)


def kind_of(name: str, keyvault: Iterable[str] = ()) -> str:
    """ARM for ``Microsoft.X/...``, Key Vault for its ObjectVerb names, else an audit activity."""
    if name.lower().startswith("microsoft.") and "/" in name:
        return ARM
    known = {k.lower() for k in keyvault} or {k.lower() for k in load_names()[KEY_VAULT]["names"]}
    return KEY_VAULT if name.lower() in known else AUDIT


def all_uses() -> list[Use]:
    """Every name the shipped content and the built-in rules wait for or send in examples."""
    uses = [u for p in rule_files() for u in (*sigma_uses(p), *example_uses(p))]
    return [*uses, *python_uses(), *python_example_uses(), *mfa_uses()]


def load_names() -> dict[str, Any]:
    """The checked names, by kind."""
    names: dict[str, Any] = json.loads(NAMES_FILE.read_text("utf-8"))
    return names


def python_example_uses() -> Iterator[Use]:
    """The names the built-in rules' own examples send as admin activity (not Kubernetes's)."""
    for cls in rule_classes():
        for example in cls.examples():
            for event in example.events:
                admin = event.log_set is LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY
                if admin and event.operation and event.category not in KUBE_CATEGORIES:
                    yield Use(kind_of(event.operation), event.operation, f"{cls.meta.id} example")


def mfa_uses() -> Iterator[Use]:
    """The authentication-method activities ``admin.privileged_mfa_changed`` waits for."""
    for name in admin_rules._MFA_OPERATIONS:
        yield Use(AUDIT, name, "admin.privileged_mfa_changed")
