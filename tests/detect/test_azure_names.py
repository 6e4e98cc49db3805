"""Every operation a rule waits for is one Azure really writes, in whatever case it writes it.

A rule naming an operation Azure never writes cannot fire, and its own examples (written with the
same spelling) do not notice: ``Microsoft.KeyVault/vaults/purge/action`` is no operation (a vault
purge is ``Microsoft.KeyVault/locations/deletedVaults/purge/action``). So every name the rules and
their examples use must be in ``tests/data/azure_names.json``, where each was checked against the
page of Microsoft's documentation it names. Azure writes some records in upper case
(``MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE``): every rule's examples still hold with their
names upper- or lower-cased, through the real parser and matcher.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubsight.detect.base import Example
from hubsight.detect.content.examples import examples_path, load_examples
from hubsight.detect.rules.operations import OperationRule
from hubsight.detect.ruleset import build_rule, rule_class, rule_classes, run_example

from tests.detect.names import (
    ARM,
    AUDIT,
    KEY_VAULT,
    Use,
    all_uses,
    kind_of,
    load_names,
    rule_files,
    sigma_uses,
)

NAMES = load_names()
USES = all_uses()
# Provider/resource type.../verb; the Activity Log writes writes, deletes and actions (not reads).
_ARM_SHAPE = re.compile(r"microsoft\.[a-z]+(/[a-z0-9]+)+/(write|delete|action)", re.IGNORECASE)


def _uses(kind: str) -> list[Use]:
    return [u for u in USES if u.kind == kind]


def _listed(names: Any) -> dict[str, str]:
    """Casefolded name -> name as listed."""
    return {n.casefold(): n for n in names}


def _unlisted(kind: str, names: Any) -> list[tuple[str, str]]:
    """The (name, where) of uses of ``kind`` not among ``names``, in any case."""
    listed = _listed(names)
    return sorted(
        {(u.name, u.where) for u in _uses(kind) if u.name.strip().casefold() not in listed}
    )


def test_names_are_gathered_from_every_kind_of_source() -> None:
    # A gatherer that silently found nothing would make every check below pass.
    wheres = {u.where for u in USES}
    assert len(_uses(ARM)) > 300
    assert len(_uses(AUDIT)) > 90
    assert len(_uses(KEY_VAULT)) > 15
    assert "azure.keyvault_purge" in wheres, "the built-in rules' operations"
    assert "admin.privileged_mfa_changed" in wheres, "the built-in rules' activity sets"
    assert any(w.startswith("entra.admin_consent ") for w in wheres), "the Sigma rules"
    assert any(" example " in w for w in wheres), "the examples"


def test_every_arm_operation_a_rule_waits_for_has_the_shape_azure_writes() -> None:
    rules = [u for u in _uses(ARM) if " example" not in u.where]
    bad = sorted({(u.name, u.where) for u in rules if not _ARM_SHAPE.fullmatch(u.name)})
    assert bad == [], "Provider/resource.../write|delete|action"


def test_every_arm_operation_is_a_documented_one() -> None:
    assert _unlisted(ARM, NAMES[ARM]["operations"]) == [], (
        "not on the Azure permissions page of its provider: check the page named in "
        "tests/data/azure_names.json and fix the name, or add it there once found"
    )


def test_every_listed_operation_has_its_provider_page() -> None:
    pages = NAMES[ARM]["pages"]
    providers = {o.split("/")[0].casefold(): o for o in NAMES[ARM]["operations"]}
    assert sorted(o for p, o in providers.items() if p not in _listed(pages)) == []
    assert all(url.startswith("https://learn.microsoft.com/") for url in pages.values())


def test_every_audit_activity_is_listed_with_its_source() -> None:
    activities = NAMES[AUDIT]["activities"]
    assert _unlisted(AUDIT, activities) == [], "fix the name, or list it with the page listing it"
    assert all(source.strip() for source in activities.values())


def test_every_key_vault_operation_is_listed() -> None:
    assert _unlisted(KEY_VAULT, NAMES[KEY_VAULT]["names"]) == []


@pytest.mark.parametrize("kind", [ARM, AUDIT, KEY_VAULT])
def test_every_listed_name_is_in_use(kind: str) -> None:
    # The list is the names checked for the content, not a copy of Microsoft's pages.
    entries = NAMES[kind]
    names = entries.get("operations") or entries.get("activities") or entries["names"]
    used = {u.name.strip().casefold() for u in _uses(kind)}
    assert sorted(n for n in names if n.casefold() not in used) == []


def test_a_name_azure_never_writes_is_caught() -> None:
    # What the checks above would say of the operation azure.keyvault_purge once waited for.
    wrong = "MICROSOFT.KEYVAULT/VAULTS/PURGE/ACTION"
    assert kind_of(wrong) == ARM
    assert _ARM_SHAPE.fullmatch(wrong), "the shape alone does not catch it"
    assert wrong.casefold() not in _listed(NAMES[ARM]["operations"])
    assert "Reset password".casefold() not in _listed(NAMES[AUDIT]["activities"])


# -- case: Azure writes MICROSOFT.X/Y/WRITE in some records and Microsoft.X/y/write in others --

_CASED_RULES = [p for p in rule_files() if any(True for _ in sigma_uses(p))]
_VARS = ("operation", "activity")


def _recased(node: Any, change: str) -> Any:
    """The examples document with every operation and activity name in ``change`` case."""
    if isinstance(node, dict):
        return {
            k: getattr(v, change)() if k in _VARS and isinstance(v, str) else _recased(v, change)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_recased(item, change) for item in node]
    return node


def _holds(rule: Any, example: Example) -> bool:
    return example.met([a.severity for a in run_example(rule, example)])


@pytest.mark.parametrize("change", ["upper", "lower"])
@pytest.mark.parametrize("path", _CASED_RULES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sigma_rules_match_operation_names_in_any_case(
    path: Path, change: str, tmp_path: Path
) -> None:
    doc = json.loads(examples_path(path).read_text("utf-8"))
    recased = tmp_path / f"{path.stem}.examples.json"
    recased.write_text(json.dumps(_recased(doc, change)), "utf-8")
    rule = build_rule(rule_class(f"{path.parent.name}.{path.stem}"), {})
    examples = load_examples(recased)
    assert examples
    assert [e.name for e in examples if not _holds(rule, e)] == []


_OPERATION_RULES = [c for c in rule_classes() if issubclass(c, OperationRule)]


@pytest.mark.parametrize("change", ["upper", "lower"])
@pytest.mark.parametrize("cls", _OPERATION_RULES, ids=lambda c: c.meta.id)
def test_built_in_rules_match_operation_names_in_any_case(
    cls: type[OperationRule], change: str
) -> None:
    rule = build_rule(cls, {})
    for example in cls.examples():
        events = [
            msgspec.structs.replace(e, operation=getattr(e.operation, change)())
            if e.operation
            else e
            for e in example.events
        ]
        recased = Example(example.name, events, example.fires, alerts=example.alerts)
        assert _holds(rule, recased), example.name
