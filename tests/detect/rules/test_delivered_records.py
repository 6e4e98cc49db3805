"""Which rules fire on a record as Event Hubs delivers it, sent through the real parser.

A built-in rule's own examples are ``admin()`` events, which put every operation in the admin log
set; ``azure.keyvault_purge`` waited there for Key Vault's ``SecretPurge`` and ``KeyPurge`` and
passed its examples, but Key Vault's AuditEvent records are another log set, so it never fired on
one. These checks build the records Azure writes (``detect/content/records``) and run every rule.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.base import EventKind
from hubsight.detect.content.examples import load_examples
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.operations import OperationRule
from hubsight.detect.ruleset import build_rule, build_ruleset, rule_classes
from hubsight.detect.settings import DetectConfig
from hubsight.parsing.event import Event

from tests.detect.names import ARM, AUDIT, KEY_VAULT, kind_of

VAULT = "https://kv-prod.vault.azure.net"
GLOBAL_ADMIN_ID = "62e90394-69f5-4237-9190-012177145e10"
REPORTS_READER_ID = "4a5d8f65-41da-4de4-8968-e035b65339cf"


def _records(tmp_path: Path, base: str, *specs: dict[str, Any]) -> list[Event]:
    """The records ``specs`` describe on base record ``base``, parsed as the collector would."""
    path = tmp_path / "records.examples.json"
    path.write_text(json.dumps({"record": base, "fires": list(specs)}), "utf-8")
    return [event for example in load_examples(path) for event in example.events]


def _fired(events: list[Event]) -> set[str]:
    """The ids of the shipped rules (all of them, default settings) that alert on ``events``."""
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        build_ruleset(DetectConfig(), {}).rules,
        options=EngineOptions(persist=False, learning=timedelta(0)),
    )
    alerts = engine.process(events)
    engine.db.close()
    return {alert.rule_id for alert in alerts}


def _kv(tmp_path: Path, operation: str, obj: str, status: str = "200") -> list[Event]:
    result = "Success" if status.startswith("2") else "Forbidden"
    return _records(
        tmp_path,
        "keyvault",
        {
            "name": operation,
            "operation": operation,
            "object": f"{VAULT}/{obj}",
            "status": status,
            "result": result,
            "signature": "OK" if result == "Success" else "Forbidden",
        },
    )


# -- every operation a built-in rule waits for reaches it on the record Azure writes ------------

_BASE_OF = {ARM: "administrative", AUDIT: "audit", KEY_VAULT: "keyvault"}
_VAR_OF = {ARM: "operation", AUDIT: "activity", KEY_VAULT: "operation"}


def test_every_operation_a_built_in_rule_waits_for_reaches_it(tmp_path: Path) -> None:
    # A rule is handed only the events of kinds it ``reads``: log set, result, operation.
    classes = [c for c in rule_classes() if issubclass(c, OperationRule)]
    rules = {c.meta.id: build_rule(c, {}) for c in classes}
    waits = sorted({(c.meta.id, op) for c in classes for op in c.operations | c.unconditional})
    assert len(waits) > 30, "the built-in operation rules and their names were found"
    unreached = []
    for kind in (ARM, AUDIT, KEY_VAULT):
        mine = [(rule_id, op) for rule_id, op in waits if kind_of(op) == kind]
        specs = [{"name": f"{r} {op}", _VAR_OF[kind]: op} for r, op in mine]
        events = _records(tmp_path, _BASE_OF[kind], *specs)
        for (rule_id, op), event in zip(mine, events, strict=True):
            seen = EventKind(event.log_set, event.result, event.operation, bool(event.user))
            if not rules[rule_id].reads(seen):
                unreached.append((rule_id, op, event.log_set.value))
    assert unreached == [], "never handed this record: wait for it in a rule reading its log set"


@pytest.mark.parametrize(
    ("operation", "obj"),
    [
        ("SecretPurge", "deletedsecrets/app-db-password"),
        ("KeyPurge", "deletedkeys/cmk-orders"),
        ("CertificatePurge", "deletedcertificates/web-tls"),
    ],
)
def test_a_purged_secret_key_or_certificate_raises_one_alert(
    tmp_path: Path, operation: str, obj: str
) -> None:
    assert _fired(_kv(tmp_path, operation, obj)) == {"graph.keyvault_objects_purged"}


def test_a_refused_certificate_purge_raises_none(tmp_path: Path) -> None:
    assert _fired(_kv(tmp_path, "CertificatePurge", "deletedcertificates/web-tls", "403")) == set()


def _arm(tmp_path: Path, operation: str, resource: str, **more: Any) -> list[Event]:
    spec = {"operation": operation, "resource": resource, **more}
    return _records(tmp_path, "administrative", spec)


DELETED = (
    "/subscriptions/3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9/providers/Microsoft.KeyVault/locations/"
    "westeurope"
)


def test_a_purged_vault_and_a_purged_managed_hsm_each_raise_their_rule(tmp_path: Path) -> None:
    vault = _arm(
        tmp_path,
        "Microsoft.KeyVault/locations/deletedVaults/purge/action",
        f"{DELETED}/deletedVaults/kv-prod",
    )
    hsm = _arm(
        tmp_path,
        "Microsoft.KeyVault/locations/deletedManagedHSMs/purge/action",
        f"{DELETED}/deletedManagedHSMs/hsm-prod",
    )
    assert "azure.keyvault_purge" in _fired(vault)
    assert "keyvault.managed_hsm_purged" in _fired(hsm)
    assert "azure.keyvault_purge" not in _fired(hsm), "one purge, one purge alert"


# -- PIM: an activation names the role as a target ----------------------------------------------


def pim_activation(tmp_path: Path, role: str, role_id: str, **more: Any) -> list[Event]:
    """An activation record as the PIM service writes it: the role, the user, the request."""
    mallory: dict[str, Any] = {
        "id": "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a",
        "displayName": "Mallory",
        "type": "User",
        "userPrincipalName": "Mallory@contoso.com",
        "modifiedProperties": [],
        "groupType": None,
    }
    return _records(
        tmp_path,
        "audit",
        {
            "activity": "Add member to role completed (PIM activation)",
            "audit_category": "RoleManagement",
            "service": "PIM",
            "operation_type": "Assign",
            "initiated_by": {
                "user": {
                    "id": mallory["id"],
                    "displayName": "Mallory",
                    "userPrincipalName": "Mallory@contoso.com",
                    "ipAddress": "203.0.113.77",
                    "roles": [],
                }
            },
            "targets": [
                {
                    "id": role_id,
                    "displayName": role,
                    "type": "Role",
                    "userPrincipalName": None,
                    "modifiedProperties": [],
                    "groupType": None,
                },
                mallory,
                {
                    "id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                    "displayName": None,
                    "type": "Request",
                    "userPrincipalName": None,
                    "modifiedProperties": [],
                    "groupType": None,
                },
            ],
            "details": [
                {"key": "RoleDefinitionOriginId", "value": role_id},
                {"key": "Justification", "value": "INC-4411 certificate renewal"},
                {"key": "StartTime", "value": "2026-03-02T09:00:04.0000000Z"},
                {"key": "ExpirationTime", "value": "2026-03-02T17:00:04.0000000Z"},
            ],
            **more,
        },
    )


def test_activating_a_privileged_role_in_pim_is_no_grant_but_new_for_the_user(
    tmp_path: Path,
) -> None:
    # PIM tenants activate admin roles every day by design: an alert each would be noise.
    fired = _fired(pim_activation(tmp_path, "Global Administrator", GLOBAL_ADMIN_ID))
    assert "admin.privileged_role_granted" not in fired
    assert "entra.pim_activation_unusual" in fired


def test_activating_a_reader_role_or_failing_to_activate_is_not(tmp_path: Path) -> None:
    reader = pim_activation(tmp_path, "Reports Reader", REPORTS_READER_ID)
    refused = pim_activation(
        tmp_path,
        "Global Administrator",
        GLOBAL_ADMIN_ID,
        result="failure",
        reason="The role assignment request was not approved.",
    )
    assert _fired(reader) == set()
    assert _fired(refused) == set()
