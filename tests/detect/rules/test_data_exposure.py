"""Data services opened to the network beyond their examples: titles, context, odd bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hubsight.detect.base import Severity
from hubsight.detect.content.examples import load_examples
from hubsight.detect.hunt import replayable_ids
from hubsight.detect.rules.data_exposure import (
    RULES,
    DatabaseFirewallOpened,
    KeyVaultNetworkOpened,
    StorageNetworkOpened,
)
from hubsight.detect.rules.service_access import AZURE_SERVICES, database_of
from hubsight.detect.ruleset import build_rule, run_example

from tests.detect.rules.bodies import BODY_KEYS, judge_body, values

SUB = "/subscriptions/3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9/resourceGroups/rg-prod/providers"
SERVER = f"{SUB}/Microsoft.Sql/servers/sql-prod"
ACCOUNT = f"{SUB}/Microsoft.Storage/storageAccounts/stcontosoprod"
VAULT = f"{SUB}/Microsoft.KeyVault/vaults/kv-prod"


def _start(operation: str, resource: str, body: object, **extra: Any) -> dict[str, Any]:
    return {
        "operation": operation,
        "resource": resource,
        "stage": "Start",
        "signature": "Started.",
        "requestbody": json.dumps(body),
        "set": {"properties.statusCode": None},
        **extra,
    }


def _examples(tmp_path: Path, *specs: dict[str, Any]) -> list[Any]:
    path = tmp_path / "data.examples.json"
    path.write_text(json.dumps({"record": "administrative", "fires": list(specs)}))
    return load_examples(path)


def test_a_storage_ip_rule_alert_names_the_rule_and_its_addresses(tmp_path: Path) -> None:
    acls = {"defaultAction": "Deny", "ipRules": [{"value": "0.0.0.0/1", "action": "Allow"}]}
    body = {"properties": {"networkAcls": acls}}
    (example,) = _examples(
        tmp_path, _start("Microsoft.Storage/storageAccounts/write", ACCOUNT, body)
    )
    (alert,) = run_example(build_rule(StorageNetworkOpened, {}), example)
    assert alert.title == (
        "firewall open to every address (IP rule 0.0.0.0/1) on storage account stcontosoprod "
        "by carol.admin@contoso.com"
    )
    assert alert.context["rule"] == {"name": "networkAcls.ipRules", "sources": ["0.0.0.0/1"]}
    assert alert.context["place"] == "storage account stcontosoprod"


def test_a_database_alert_is_about_the_server_and_its_rule(tmp_path: Path) -> None:
    start, end = AZURE_SERVICES.split("-")
    body = {"properties": {"startIpAddress": start, "endIpAddress": end}}
    rule_id = f"{SERVER}/firewallRules/AllowAllWindowsAzureIps"
    (example,) = _examples(
        tmp_path, _start("Microsoft.Sql/servers/firewallRules/write", rule_id, body)
    )
    (alert,) = run_example(build_rule(DatabaseFirewallOpened, {}), example)
    assert alert.severity is Severity.MEDIUM
    assert "Allow Azure services) in SQL server sql-prod (rule AllowAllWindowsAzureIps)" in (
        alert.title
    )
    assert alert.context["rule"] == {
        "name": "AllowAllWindowsAzureIps",
        "sources": ["0.0.0.0-0.0.0.0"],
    }
    assert database_of(rule_id) == SERVER
    assert database_of(SERVER) == SERVER


def test_an_opening_written_again_within_a_day_joins_its_alert(tmp_path: Path) -> None:
    body = {"properties": {"networkAcls": {"defaultAction": "Allow"}}}
    write = "Microsoft.KeyVault/vaults/write"
    again = {
        "name": "a pipeline re-applying the vault's template",
        "records": [
            _start(write, VAULT, body, time="2026-03-02T09:00:00.0000000Z"),
            _start(write, VAULT, body, time="2026-03-02T20:00:00.0000000Z"),
        ],
    }
    (example,) = _examples(tmp_path, again)
    assert len(run_example(build_rule(KeyVaultNetworkOpened, {}), example)) == 1
    assert len(run_example(build_rule(KeyVaultNetworkOpened, {"dedup_minutes": 60}), example)) == 2


def test_the_rules_are_hunted_by_id() -> None:
    assert {cls.meta.id for cls in RULES} <= replayable_ids()


_KEYS = [
    "properties", "name", "startIpAddress", "endIpAddress", "networkAcls", "defaultAction",
    "ipRules", "ipv6Rules", "value", "action", "publicNetworkAccess",
]  # fmt: skip
_WORDS = [
    "Allow", "Deny", "Enabled", "Disabled", "SecuredByPerimeter", "255.255.255.255",
    "0.0.0.0/0", "::/0", "0.0.0.0/1", "20.38.0.0/16", "203.0.113.7", "10.0.0.0/8",
    "1.2.3.4-::1", "", *AZURE_SERVICES.split("-"),
]  # fmt: skip
_WRITES = st.sampled_from(
    [
        ("Microsoft.Sql/servers/firewallRules/write", f"{SERVER}/firewallRules/x"),
        ("Microsoft.Synapse/workspaces/firewallRules/write", f"{SUB}/x/firewallRules/y"),
        ("Microsoft.Storage/storageAccounts/write", ACCOUNT),
        ("Microsoft.KeyVault/vaults/write", VAULT),
    ]
)


@settings(max_examples=200, deadline=None)
@given(body=values(_KEYS, _WORDS), write=_WRITES, key=BODY_KEYS, text=st.booleans())
def test_any_body_is_judged_without_error(
    body: object, write: tuple[str, str], key: str, text: bool
) -> None:
    # Bodies are JSON text in the records, but a shape that holds them as objects must pass too.
    operation, resource = write
    judge_body(RULES, operation, resource, key, body, text=text)
