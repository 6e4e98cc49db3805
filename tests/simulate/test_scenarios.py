"""Every scenario is planted, reported in the ground truth, and looks like the attack it names."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from hubsight.detect.ruleset import rule_classes
from hubsight.simulate import SCENARIOS

from .runs import Run

Record = dict[str, Any]


def _truth(day: Run, name: str) -> dict[str, Any]:
    entries = [t for t in day.truth if t["scenario"] == name]
    assert len(entries) == 1, f"{name} should be planted once"
    return entries[0]


def _created(record: Record) -> datetime:
    return datetime.fromisoformat(record["properties"]["createdDateTime"])


def _code(record: Record) -> int:
    code: int = record["properties"]["status"]["errorCode"]
    return code


def _within(records: list[Record], minutes: int) -> bool:
    times = sorted(_created(r) for r in records)
    return times[-1] - times[0] <= timedelta(minutes=minutes)


def _km(a: Record, b: Record) -> float:
    first = a["properties"]["location"]["geoCoordinates"]
    second = b["properties"]["location"]["geoCoordinates"]
    lat1, lon1 = math.radians(first["latitude"]), math.radians(first["longitude"])
    lat2, lon2 = math.radians(second["latitude"]), math.radians(second["longitude"])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371 * math.asin(math.sqrt(h))


def _brute_force(records: list[Record], truth: dict[str, Any]) -> None:
    records.sort(key=_created)
    failures = [r for r in records if _code(r) == 50126]
    assert len(failures) >= 10
    assert _within(failures, 10)
    assert {r["properties"]["userPrincipalName"] for r in records} == {truth["user"]}
    assert {r["callerIpAddress"] for r in records} == set(truth["source_ips"])
    assert _code(records[-1]) == 0


def _password_spray(records: list[Record], truth: dict[str, Any]) -> None:
    users = {r["properties"]["userPrincipalName"] for r in records}
    assert len(users) >= 5
    assert _within(records, 20)
    assert {r["callerIpAddress"] for r in records} == set(truth["source_ips"])
    assert {_code(r) for r in records} <= {50126, 50053, 50034}
    assert 50034 in {_code(r) for r in records}


def _impossible_travel(records: list[Record], truth: dict[str, Any]) -> None:
    successes = sorted(
        (r for r in records if r["category"] == "SignInLogs" and _code(r) == 0), key=_created
    )
    home, away = successes[0], successes[1]
    hours = (_created(away) - _created(home)).total_seconds() / 3600
    assert _km(home, away) / hours > 900
    assert home["location"] != away["location"]


def _token_theft(records: list[Record], truth: dict[str, Any]) -> None:
    records.sort(key=_created)
    phished, *replays = records
    # The proxy's interactive sign-in with MFA opened the session; replays only refresh tokens.
    assert phished["category"] == "SignInLogs"
    assert phished["properties"]["authenticationRequirement"] == "multiFactorAuthentication"
    assert {r["category"] for r in replays} == {"NonInteractiveUserSignInLogs"}
    assert all(_code(r) == 0 for r in records)
    # One session, from the three addresses of the truth, within the hour.
    assert len({r["properties"]["sessionId"] for r in records}) == 1
    assert phished["callerIpAddress"] == truth["source_ips"][0]
    assert {r["callerIpAddress"] for r in records} == set(truth["source_ips"])
    assert len(set(truth["source_ips"])) == 3
    assert _within(records, 59)


def _mfa_fatigue(records: list[Record], truth: dict[str, Any]) -> None:
    records.sort(key=_created)
    denied = [r for r in records if _code(r) == 500121]
    assert len(denied) >= 5
    assert _within(denied, 10)
    assert _code(records[-1]) == 0
    assert records[-1]["properties"]["authenticationRequirement"] == "multiFactorAuthentication"
    # Each push is one flow: MFA required (50074), then denied, or at last approved.
    flows: dict[str, list[int]] = {}
    for record in records:
        flows.setdefault(record["correlationId"], []).append(_code(record))
    assert sorted(flows.values()) == [[50074, 0]] + [[50074, 500121]] * len(denied)


def _disabled(records: list[Record], truth: dict[str, Any]) -> None:
    assert {_code(r) for r in records} == {50057}


def _role_grant(records: list[Record], truth: dict[str, Any]) -> None:
    (record,) = records
    assert record["operationName"] == "Add member to role"
    target = record["properties"]["targetResources"][0]
    assert target["userPrincipalName"] == truth["user"]
    roles = [
        p["newValue"]
        for p in target["modifiedProperties"]
        if p["displayName"] == "Role.DisplayName"
    ]
    assert roles == ['"Global Administrator"']


def _app_credential(records: list[Record], truth: dict[str, Any]) -> None:
    audit = next(r for r in records if r["category"] == "AuditLogs")
    assert audit["operationName"].startswith("Update application – Certificates and secrets")
    names = [
        p["displayName"] for p in audit["properties"]["targetResources"][0]["modifiedProperties"]
    ]
    assert "KeyDescription" in names
    assert any(r["category"] == "ServicePrincipalSignInLogs" for r in records)


def _operations(*operations: str) -> Callable[[list[Record], dict[str, Any]], None]:
    def check(records: list[Record], truth: dict[str, Any]) -> None:
        assert {r["category"] for r in records} == {"Administrative"}
        assert {r["operationName"] for r in records} == set(operations)
        # Each operation started and succeeded; asynchronous ones were accepted in between.
        assert {r["resultType"] for r in records} - {"Accept"} == {"Start", "Success"}
        callers = {
            r["identity"]["claims"]["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"]
            for r in records
        }
        assert callers == {truth["user"]}

    return check


def _defender(records: list[Record], truth: dict[str, Any]) -> None:
    export = next(r for r in records if "AlertType" in r)
    assert export["AlertType"] == "KV_TORAccess"
    assert "category" not in export
    refs = [e for e in export["Entities"] if "$ref" in str(e)]
    assert refs, "continuous export links entities by $ref"
    assert any(r.get("category") == "Security" for r in records)


def _distributed(records: list[Record], truth: dict[str, Any]) -> None:
    assert {_code(r) for r in records} == {50126}
    assert {r["properties"]["userPrincipalName"] for r in records} == {truth["user"]}
    assert len({r["callerIpAddress"] for r in records}) >= 5
    assert _within(records, 60)


def _lockouts(records: list[Record], truth: dict[str, Any]) -> None:
    assert {_code(r) for r in records} == {50053}
    assert len({r["properties"]["userPrincipalName"] for r in records}) >= 15
    assert _within(records, 60)


def _success_with(field: str, value: str) -> Callable[[list[Record], dict[str, Any]], None]:
    def check(records: list[Record], truth: dict[str, Any]) -> None:
        sign_in = next(r for r in records if r["category"] == "SignInLogs")
        assert _code(sign_in) == 0
        assert sign_in["properties"][field] == value

    return check


def _risk(kind: str, level: str) -> Callable[[list[Record], dict[str, Any]], None]:
    def check(records: list[Record], truth: dict[str, Any]) -> None:
        by_category = {r["category"]: r for r in records}
        assert set(by_category) == {"SignInLogs", "UserRiskEvents", "RiskyUsers"}
        assert by_category["SignInLogs"]["properties"]["riskEventTypes_v2"] == [kind]
        assert by_category["SignInLogs"]["properties"]["riskLevelDuringSignIn"] == level
        assert by_category["UserRiskEvents"]["properties"]["riskEventType"] == kind
        assert by_category["UserRiskEvents"]["properties"]["ipAddress"] == truth["source_ips"][0]
        # The detection names the sign-in it is about.
        sign_in, detection = by_category["SignInLogs"], by_category["UserRiskEvents"]
        assert detection["properties"]["requestId"] == sign_in["properties"]["id"]
        assert detection["properties"]["correlationId"] == sign_in["correlationId"]

    return check


def _audits(*activities: str, marker: str) -> Callable[[list[Record], dict[str, Any]], None]:
    def check(records: list[Record], truth: dict[str, Any]) -> None:
        assert [r["operationName"] for r in sorted(records, key=_activity_time)] == list(activities)
        assert all(r["category"] == "AuditLogs" for r in records)
        assert marker in json.dumps([r["properties"]["targetResources"] for r in records])

    return check


def _requested(marker: str, *operations: str) -> Callable[[list[Record], dict[str, Any]], None]:
    # Operations whose request body (on the Start record) asks for the risky setting.
    by_operations = _operations(*operations)

    def check(records: list[Record], truth: dict[str, Any]) -> None:
        by_operations(records, truth)
        bodies = [r["properties"].get("requestbody", "") for r in records]
        assert any(marker in body for body in bodies), bodies

    return check


def _graph_enumeration(records: list[Record], truth: dict[str, Any]) -> None:
    reads = [r for r in records if r["category"] == "MicrosoftGraphActivityLogs"]
    assert len(reads) >= 20
    assert {r["properties"]["requestMethod"] for r in reads} == {"GET"}
    assert {r["properties"]["userId"] for r in reads} == {reads[0]["properties"]["userId"]}
    times = sorted(datetime.fromisoformat(r["time"]) for r in reads)
    assert times[-1] - times[0] <= timedelta(minutes=2)
    vault = [r for r in records if r["category"] == "AuditEvent"]
    assert [r["operationName"] for r in vault] == ["SecretBackup"]


def _data_plane_theft(records: list[Record], truth: dict[str, Any]) -> None:
    (ip,) = truth["source_ips"]
    # In the order they happened (delivery may swap reads a minute apart).
    graph = sorted(
        (r["properties"] for r in records if r["category"] == "MicrosoftGraphActivityLogs"),
        key=lambda p: str(p["timeGenerated"]),
    )
    usual, intruder = graph[:2], graph[2:]
    # The intruder's application reads the same mail and file without a user signed in.
    assert [p["requestUri"] for p in usual] == [p["requestUri"] for p in intruder]
    assert {p["userId"] for p in intruder} == {""}
    assert all(p["userId"] for p in usual)
    assert {p["appId"] for p in usual}.isdisjoint({p["appId"] for p in intruder})
    secrets = [r for r in records if r["category"] == "AuditEvent"]
    assert [r["operationName"] for r in secrets] == ["SecretGet", "SecretGet"]
    assert secrets[-1]["identity"]["claim"]["upn"] == truth["user"]
    assert secrets[-1]["callerIpAddress"] == ip
    (sas,) = [r for r in records if r["category"] == "StorageRead"]
    assert sas["identity"] == {"type": "SAS"}
    assert sas["callerIpAddress"].rsplit(":", 1)[0] == ip


def _deletion_burst(records: list[Record], truth: dict[str, Any]) -> None:
    ends = [r for r in records if r["resultType"] == "Success"]
    assert all(r["operationName"].endswith("/DELETE") for r in ends)
    assert len({r["resourceId"] for r in ends}) >= 10
    # Requested within minutes (asynchronous deletions may end minutes later).
    times = sorted(datetime.fromisoformat(r["time"]) for r in records if r["resultType"] == "Start")
    assert times[-1] - times[0] <= timedelta(minutes=10)


CHECKS: dict[str, Callable[[list[Record], dict[str, Any]], None]] = {
    "brute-force": _brute_force,
    "password-spray": _password_spray,
    "impossible-travel": _impossible_travel,
    "token-theft": _token_theft,
    "mfa-fatigue": _mfa_fatigue,
    "disabled-account-signin": _disabled,
    "privileged-role-grant": _role_grant,
    "new-app-credential": _app_credential,
    "diagnostic-setting-deleted": _operations("MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE"),
    "eventhub-deleted": _operations(
        "MICROSOFT.EVENTHUB/NAMESPACES/EVENTHUBS/DELETE",
        "MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/DELETE",
    ),
    "defender-alert": _defender,
    "vm-start-stop": _operations(
        "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION",
        "MICROSOFT.COMPUTE/VIRTUALMACHINES/DEALLOCATE/ACTION",
    ),
    "list-keys": _operations("MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/LISTKEYS/ACTION"),
    "distributed-cracking": _distributed,
    "lockout-storm": _lockouts,
    "legacy-protocol": _success_with("clientAppUsed", "IMAP4"),
    "device-code-phish": _success_with("authenticationProtocol", "deviceCode"),
    "risky-signin": _risk("maliciousIPAddress", "high"),
    "tor-signin": _risk("anonymizedIPAddress", "medium"),
    "privileged-mfa-changed": _audits(
        "Add member to role", "Admin registered security info", marker="Privileged Role"
    ),
    "privileged-group-member": _audits("Add member to group", marker="Tier0 Admins"),
    "high-privilege-consent": _audits("Consent to application", marker="Mail.ReadWrite"),
    "federation-changed": _audits("Set domain authentication", marker="Federated"),
    "conditional-access-disabled": _audits("Update conditional access policy", marker="disabled"),
    "guest-promoted": _audits("Invite external user", "Update user", marker="Member"),
    "rbac-owner-assigned": _operations("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"),
    "keyvault-purge": _operations(
        "MICROSOFT.KEYVAULT/VAULTS/DELETE",
        "MICROSOFT.KEYVAULT/LOCATIONS/DELETEDVAULTS/PURGE/ACTION",
    ),
    "storage-keys-listed": _operations(
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/REGENERATEKEY/ACTION",
    ),
    "vm-run-command": _operations("MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION"),
    "resource-group-deleted": _operations(
        "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/DELETE"
    ),
    "deletion-burst": _deletion_burst,
    "keyvault-opened": _requested(
        '"defaultAction": "Allow"',
        "MICROSOFT.KEYVAULT/VAULTS/WRITE",
        "MICROSOFT.KEYVAULT/VAULTS/DELETE",
    ),
    "storage-soft-delete-off": _requested(
        '"enabled": false',
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/WRITE",
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE",
    ),
    "disk-exported": _operations(
        "MICROSOFT.COMPUTE/DISKS/BEGINGETACCESS/ACTION", "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE"
    ),
    "aks-admin-credentials": _operations(
        "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/LISTCLUSTERADMINCREDENTIAL/ACTION",
        "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/RUNCOMMAND/ACTION",
    ),
    "nsg-rdp-open": _requested(
        '"destinationPortRange": "3389"',
        "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
    ),
    "monitoring-blinded": _operations(
        "MICROSOFT.SECURITYINSIGHTS/ALERTRULES/DELETE",
        "MICROSOFT.OPERATIONALINSIGHTS/WORKSPACES/DELETE",
    ),
    "automation-backdoor": _operations(
        "MICROSOFT.AUTOMATION/AUTOMATIONACCOUNTS/RUNBOOKS/WRITE",
        "MICROSOFT.AUTOMATION/AUTOMATIONACCOUNTS/WEBHOOKS/WRITE",
    ),
    "governance-unlocked": _requested(
        '"softDeleteFeatureState": "Disabled"',
        "MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPCONFIG/WRITE",
        "MICROSOFT.AUTHORIZATION/LOCKS/DELETE",
    ),
    "defender-downgraded": _requested(
        '"pricingTier": "Free"',
        "MICROSOFT.SECURITY/PRICINGS/WRITE",
        "MICROSOFT.SECURITY/ALERTSSUPPRESSIONRULES/WRITE",
    ),
    "sql-opened": _requested(
        '"endIpAddress": "255.255.255.255"',
        "MICROSOFT.SQL/SERVERS/FIREWALLRULES/WRITE",
        "MICROSOFT.SQL/SERVERS/AUDITINGSETTINGS/WRITE",
    ),
    "graph-enumeration": _graph_enumeration,
    "data-plane-theft": _data_plane_theft,
    "entra-mfa-disabled": _audits(
        "Disable Strong Authentication", "Update named location", marker="Trusted partners"
    ),
}


def test_every_scenario_has_a_check() -> None:
    assert set(CHECKS) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_records_are_in_the_truth_and_show_the_attack(day: Run, name: str) -> None:
    truth = _truth(day, name)
    records = [day.record(ref) for ref in truth["records"]]
    assert records
    for ref, record in zip(truth["records"], records, strict=True):
        assert _key(record, ref["category"]) == ref["key"]
    assert datetime.fromisoformat(truth["start"]) <= datetime.fromisoformat(truth["end"])
    # Only the seed document's sample events are not attacks.
    assert (truth["expect"] == []) == (name == "vm-start-stop")
    CHECKS[name](records, truth)


def test_expected_detections_are_shipped_rules(day: Run) -> None:
    shipped = {rule.meta.id for rule in rule_classes()}
    expected = {rule for t in day.truth for rule in t["expect"]}
    assert expected <= shipped
    assert len(expected) >= 30


def test_scenarios_are_spread_over_the_run_in_order(day: Run) -> None:
    starts = [
        datetime.fromisoformat(t["start"]) for t in sorted(day.truth, key=lambda t: t["instance"])
    ]
    assert starts == sorted(starts)
    assert starts[-1] - starts[0] > timedelta(hours=12)


def _activity_time(record: Record) -> datetime:
    return datetime.fromisoformat(record["properties"]["activityDateTime"])


def _key(record: Record, category: str) -> str:
    if category == "SecurityAlert":
        return str(record["SystemAlertId"])
    if category == "Administrative":
        return f"{record['correlationId']}/{record['resultType']}"
    if category in ("Security", "AuditEvent", "StorageRead", "StorageWrite", "StorageDelete"):
        return str(record["correlationId"])
    if category == "MicrosoftGraphActivityLogs":
        return str(record["properties"]["requestId"])
    if category == "RiskyUsers":
        return f"{record['properties']['id']}@{record['time']}"
    return str(record["properties"]["id"])
