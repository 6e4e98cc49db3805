"""The field mapping: each name Sigma's azure rules use reads the value where the record has it.

One case per mapping, on records of tests/data/azure: the rule fires on the value the record
holds there and stays quiet on a value next to it. SigmaHQ's azure rules, fetched outside the
repository, load by the count ``scripts/sigma-load.py DIR`` prints (see the README).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from hubsight.detect.base import example_event
from hubsight.detect.sigma import SigmaDetection, load_sigma_rules
from hubsight.detect.sigma.fields import PROPERTIES, SERVICES
from hubsight.parsing.event import LogSet

AZURE = Path(__file__).parents[1] / "data" / "azure"
Edit = Callable[[dict[str, Any]], None]

_SERVICES = {
    "signinlogs": (LogSet.INGRESS_AUTHENTICATION, "SignInLogs"),
    "auditlogs": (LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "AuditLogs"),
    "riskdetection": (LogSet.THIRD_PARTY_ALERTS, "UserRiskEvents"),
}
_RECORDS = {
    "signinlogs": "SignInLogs/success-mfa-push.json",
    "auditlogs": "AuditLogs/global-admin-role-granted.json",
    "riskdetection": "UserRiskEvents/unfamiliar-sign-in-properties.json",
}


def _set(path: str, value: Any) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        *heads, last = path.split(".")
        node = record
        for head in heads:
            node = node[head]
        node[last] = value

    return edit


def _consent(is_admin: str) -> Edit:
    # A "Consent to application" audit record names its context as modified properties.
    def edit(record: dict[str, Any]) -> None:
        record["properties"]["activityDisplayName"] = "Consent to application"
        record["properties"]["targetResources"][0]["modifiedProperties"] = [
            {
                "displayName": "ConsentContext.IsAdminConsent",
                "oldValue": None,
                "newValue": is_admin,
            },
            {"displayName": "ConsentContext.IsAppOnly", "oldValue": None, "newValue": '"False"'},
            {
                "displayName": "ConsentAction.Permissions",
                "oldValue": None,
                "newValue": '["Mail.Read", "offline_access"]',
            },
        ]

    return edit


_LAPS = _set(
    "properties.additionalDetails",
    [
        {"key": "DeviceId", "value": "3f2e1d0c-9b8a-4776-8594-a3b2c1d0e9f8"},
        {"key": "AdditionalInfo", "value": "Successfully recovered local credential by device id"},
    ],
)

_BLOCKED = "Microsoft.online.Security.userConsentBlockedForRiskyAppsExceptions"

# (service, selection, edit of the record, fires)
CASES: dict[str, tuple[str, dict[str, Any], Edit | None, bool]] = {
    "ResultType": ("signinlogs", {"ResultType": 0}, None, True),
    "ResultType-other": ("signinlogs", {"ResultType": 50126}, None, False),
    "ResultType-status": (
        "signinlogs",
        {"ResultType": 50055},
        _set("properties.status", {"errorCode": 50055}),
        True,
    ),
    "UserPrincipalName": (
        "signinlogs",
        {"UserPrincipalName": "alice.martin@contoso.com"},
        None,
        True,
    ),
    "UserPrincipalName-other": (
        "signinlogs",
        {"UserPrincipalName": "alice@contoso.com"},
        None,
        False,
    ),
    "Username": ("signinlogs", {"Username": "ALICE.MARTIN@CONTOSO.COM"}, None, True),
    "Username-other": ("signinlogs", {"Username": "Alice Martin"}, None, False),
    "IPAddress": ("signinlogs", {"IPAddress": "81.2.69.160"}, None, True),
    "IPAddress-other": ("signinlogs", {"IPAddress": "81.2.69.161"}, None, False),
    "OperationName": ("signinlogs", {"OperationName": "Sign-in activity"}, None, True),
    "OperationName-other": ("signinlogs", {"OperationName": "Sign-in"}, None, False),
    "ClientApp": ("signinlogs", {"ClientApp": "Browser"}, None, True),
    "ClientApp-other": ("signinlogs", {"ClientApp": ["IMAP4", "POP3"]}, None, False),
    "ResultDescription": (
        "signinlogs",
        {"ResultDescription|contains": "password is expired"},
        _set("properties.status.failureReason", "The password is expired."),
        True,
    ),
    "ResultDescription-other": (
        "signinlogs",
        {"ResultDescription|contains": "password is expired"},
        None,
        False,
    ),
    "RiskState": ("signinlogs", {"RiskState": "none"}, None, True),
    "RiskState-other": ("signinlogs", {"RiskState": "atRisk"}, None, False),
    "NetworkLocationDetails": ("signinlogs", {"NetworkLocationDetails": "[]"}, None, True),
    "NetworkLocationDetails-named": (
        "signinlogs",
        {"NetworkLocationDetails|contains": "trustedNamedLocation"},
        _set(
            "properties.networkLocationDetails",
            [{"networkType": "trustedNamedLocation", "networkNames": ["Office"]}],
        ),
        True,
    ),
    "DeviceDetail.trusttype": (
        "signinlogs",
        {"DeviceDetail.trusttype": "Azure AD joined"},
        _set("properties.deviceDetail.trustType", "Azure AD joined"),
        True,
    ),
    "DeviceDetail.trusttype-other": (
        "signinlogs",
        {"DeviceDetail.trusttype": "Azure AD joined"},
        None,
        False,
    ),
    "properties.x": (
        "signinlogs",
        {"properties.appDisplayName": "Microsoft Office 365 Portal"},
        None,
        True,
    ),
    "properties.x-other": (
        "signinlogs",
        {"properties.appDisplayName": "Azure Portal"},
        None,
        False,
    ),
    "properties.message": (
        "signinlogs",
        {"properties.message": "Device Code"},
        _set("properties.authenticationProtocol", "deviceCode"),
        True,
    ),
    "properties.message-ropc": (
        "signinlogs",
        {"properties.message": "ROPC"},
        _set("properties.authenticationProtocol", "ropc"),
        True,
    ),
    "properties.message-other": ("signinlogs", {"properties.message": "Device Code"}, None, False),
    "ActivityDetails": ("signinlogs", {"ActivityDetails": "Sign-ins"}, None, True),
    "ActivityDetails-other": ("signinlogs", {"ActivityDetails": "Audit logs"}, None, False),
    "key-value pair": (
        "signinlogs",
        {"AuthenticationProcessingDetails.Is CAE Token": "False"},
        None,
        True,
    ),
    "key-value pair-other": (
        "signinlogs",
        {"AuthenticationProcessingDetails.Is CAE Token": "True"},
        None,
        False,
    ),
    "audit OperationName": ("auditlogs", {"OperationName": "Add member to role"}, None, True),
    "audit OperationName-other": ("auditlogs", {"OperationName": "Add user"}, None, False),
    "ActivityType": ("auditlogs", {"ActivityType|contains": "member to role"}, None, True),
    "ActivityType-other": ("auditlogs", {"ActivityType|contains": "Password reset"}, None, False),
    "Target": ("auditlogs", {"Target|contains": "Mallory@contoso.com"}, None, True),
    "Target-other": ("auditlogs", {"Target|contains": "Carol.Admin@contoso.com"}, None, False),
    "Category": ("auditlogs", {"Category": "RoleManagement"}, None, True),
    "Category-other": ("auditlogs", {"Category": "AuditLogs"}, None, False),
    "failure_status_reason": (
        "auditlogs",
        {"failure_status_reason": _BLOCKED},
        _set("properties.resultReason", _BLOCKED),
        True,
    ),
    "failure_status_reason-other": (
        "auditlogs",
        {"failure_status_reason|contains": "userConsentBlocked"},
        None,
        False,
    ),
    "ConsentContext.IsAdminConsent": (
        "auditlogs",
        {"ConsentContext.IsAdminConsent": "false"},
        _consent('"False"'),
        True,
    ),
    "ConsentContext.IsAdminConsent-admin": (
        "auditlogs",
        {"ConsentContext.IsAdminConsent": "false"},
        _consent('"True"'),
        False,
    ),
    "ConsentContext.IsAdminConsent-absent": (
        "auditlogs",
        {"ConsentContext.IsAdminConsent": "false"},
        None,
        False,
    ),
    "ConsentAction.Permissions": (
        "auditlogs",
        {"ConsentAction.Permissions": "mail.read"},
        _consent('"False"'),
        True,
    ),
    "additionalDetails.additionalInfo": (
        "auditlogs",
        {"additionalDetails.additionalInfo|contains": "Successfully recovered local credential"},
        _LAPS,
        True,
    ),
    "additionalDetails.additionalInfo-other": (
        "auditlogs",
        {"additionalDetails.DeviceId|contains": "Successfully recovered"},
        _LAPS,
        False,
    ),
    "risk RiskState": ("riskdetection", {"RiskState": "atRisk"}, None, True),
    "risk RiskState-other": ("riskdetection", {"RiskState": "remediated"}, None, False),
}


def _rule(tmp_path: Path, service: str, selection: dict[str, Any]) -> SigmaDetection:
    doc = {
        "title": "Mapping",
        "logsource": {"product": "azure", "service": service},
        "detection": {"selection": selection, "condition": "selection"},
    }
    (tmp_path / "rule.yml").write_text(yaml.safe_dump(doc), "utf-8")
    (load,) = load_sigma_rules(tmp_path)
    assert isinstance(load.rule, SigmaDetection), load.reason
    return load.rule


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_field_reads_where_the_record_holds_it(tmp_path: Path, case: str) -> None:
    service, selection, edit, fires = CASES[case]
    record = copy.deepcopy(json.loads((AZURE / _RECORDS[service]).read_text("utf-8")))
    if edit is not None:
        edit(record)
    log_set, category = _SERVICES[service]
    event = example_event(log_set, category=category, raw=msgspec.json.encode(record))
    assert (_rule(tmp_path, service, selection).match(event) is not None) is fires


def test_pim_alert_rules_say_the_alerts_are_not_exported(tmp_path: Path) -> None:
    doc = {
        "title": "Stale accounts in a privileged role",
        "logsource": {"product": "azure", "service": "pim"},
        "detection": {
            "selection": {"riskEventType": "staleSignInAlertIncident"},
            "condition": "selection",
        },
    }
    (tmp_path / "pim.yml").write_text(yaml.safe_dump(doc), "utf-8")
    (load,) = load_sigma_rules(tmp_path)
    assert load.reason == (
        "PIM's security alerts (riskEventType) live in Privileged Identity Management and "
        "Microsoft Graph only: diagnostic settings export PIM's activity as audit records, never "
        "its alerts, so no Event Hub record carries them"
    )


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _paths(inner, path)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_mapped_paths_are_spelled_as_the_records_spell_them(service: str) -> None:
    # Paths match case-insensitively, but "Open in Log Search" shows the mapped spelling: a
    # column mapped to ``properties.iPAddress`` read right and looked wrong (records say ipAddress).
    folders = {folder.name.lower(): folder for folder in AZURE.iterdir()}
    spelled = {
        path
        for category in SERVICES[service].categories & folders.keys()
        for sample in sorted(folders[category].glob("*.json"))
        if not sample.name.endswith(".expected.json")
        for record in _records(sample)
        for path in _paths(record)
    }
    assert spelled, f"no sample records of {service} in {AZURE}"
    lowered = {path.lower() for path in spelled}
    wrong = [
        mapped
        for paths in SERVICES[service].columns.values()
        for mapped in paths
        # The envelope's fields (level: Level in Entra ID records) differ between services.
        if mapped.startswith(f"{PROPERTIES}.")
        and mapped.lower() in lowered
        and mapped not in spelled
    ]
    assert wrong == []


def _records(sample: Path) -> list[Any]:
    try:
        held = json.loads(sample.read_text())
    except json.JSONDecodeError:
        return []  # a sample of a broken message, for Unparsed Data
    return held.get("records", [held]) if isinstance(held, dict) else list(held)
