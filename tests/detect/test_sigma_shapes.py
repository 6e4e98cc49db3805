"""Each rule of ``sigma_rules/shapes`` fires on a record made to match it and not on a near miss.

test_sigma.py pins what every file loads to and replays the records of ``HITS``; this file
covers the loaded rules the replay does not fire, so each field name, modifier and condition of
the fixtures is shown to read the record where Microsoft's schema puts the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubsight.detect.base import example_event
from hubsight.detect.sigma import LOADED, SigmaDetection, load_sigma_rules
from hubsight.parsing.event import LogSet

from .test_sigma import HITS, SHAPES, SHAPES_EXPECTED
from tests.detect.context import NoContext

AZURE = Path(__file__).parents[1] / "data" / "azure"
Edit = Callable[[dict[str, Any]], None]

# The record each service's cases start from, and the event fields it arrives with.
_BASES: dict[str, tuple[str, dict[str, Any]]] = {
    "activity": (
        "Administrative/owner-role-assignment-request-body.json",
        {"log_set": LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "category": "Administrative"},
    ),
    "signin": (
        "SignInLogs/success-mfa-push.json",
        {"log_set": LogSet.INGRESS_AUTHENTICATION, "category": "SignInLogs", "result": "SUCCESS"},
    ),
    "audit": (
        "AuditLogs/global-admin-role-granted.json",
        {"log_set": LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "category": "AuditLogs"},
    ),
    "risk": (
        "UserRiskEvents/unfamiliar-sign-in-properties.json",
        {"log_set": LogSet.THIRD_PARTY_ALERTS, "category": "UserRiskEvents"},
    ),
}


def _set(**values: Any) -> Edit:
    """Set each dotted path (``__`` in the keyword stands for ``.``) to its value."""

    def edit(record: dict[str, Any]) -> None:
        for key, value in values.items():
            *heads, last = key.split("__")
            node: Any = record
            for head in heads:
                node = node[int(head)] if isinstance(node, list) else node[head]
            node[last] = value

    return edit


def _activity(operation: str) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        record["operationName"] = operation
        del record["identity"]["authorization"]  # it names roleAssignments/write

    return edit


def _audit(activity: str, **values: Any) -> Edit:
    # Entra audit records carry the activity twice: operationName and activityDisplayName.
    return _set(operationName=activity, properties__activityDisplayName=activity, **values)


def _code(code: int, description: str) -> Edit:
    return _set(
        resultType=str(code),
        resultDescription=description,
        properties__status={"errorCode": code, "failureReason": description},
    )


def _modified(*pairs: tuple[str, str]) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        record["properties"]["targetResources"][0]["modifiedProperties"] = [
            {"displayName": name, "oldValue": None, "newValue": value} for name, value in pairs
        ]

    return edit


def _both(*edits: Edit) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        for one in edits:
            one(record)

    return edit


_STRONG = "Authentication failed during strong authentication request."
# The new value of an application's KeyDescription when a credential is added.
_KEY = '["[KeyIdentifier=2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e,KeyType={},KeyUsage=Verify]"]'

# rule file, its folder (the base record of _BASES), edit that makes the rule fire, edit applied
# after it that makes the rule stay quiet (one value next to the match).
CASES: list[tuple[str, str, Edit, Edit]] = [
    (
        "aks_admin_credentials.yml",
        "activity",
        _activity("Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"),
        _set(
            operationName="Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
        ),
    ),
    (
        "disk_export_keywords.yml",
        "activity",
        _activity("Microsoft.Compute/disks/beginGetAccess/action"),
        _set(operationName="Microsoft.Compute/disks/endGetAccess/action"),
    ),
    (
        "elevate_access.yml",
        "activity",
        _activity("Microsoft.Authorization/elevateAccess/action"),
        _set(resultType="Failure"),
    ),
    (
        "nsg_rule_changed.yml",
        "activity",
        _activity("Microsoft.Network/networkSecurityGroups/securityRules/delete"),
        _set(operationName="Microsoft.Network/networkSecurityGroups/securityRules/read"),
    ),
    (
        "risky_sign_in_unmanaged.yml",
        "signin",
        _set(properties__riskState="atRisk", properties__riskLevelDuringSignIn="high"),
        _set(properties__deviceDetail__trustType="Azure AD joined"),
    ),
    (
        "risky_sign_in_unmanaged.yml",
        "signin",
        _set(
            properties__riskState="atRisk",
            properties__riskLevelDuringSignIn="high",
            properties__deviceDetail__trustType=None,
        ),
        _set(properties__riskLevelDuringSignIn="medium"),
    ),
    (
        "scripted_client_sign_in.yml",
        "signin",
        _set(properties__userAgent="python-requests/2.32.3"),
        _set(properties__ipAddress="10.20.30.40"),
    ),
    (
        "device_join_without_mfa.yml",
        "signin",
        _set(
            properties__resourceDisplayName="Device Registration Service",
            properties__authenticationRequirement="singleFactorAuthentication",
        ),
        _set(properties__authenticationRequirement="multiFactorAuthentication"),
    ),
    (
        "mfa_not_completed.yml",
        "signin",
        _code(500121, _STRONG),
        _code(50076, _STRONG),
    ),
    (
        "mfa_not_completed.yml",
        "signin",
        _code(50074, "Strong Authentication is required."),
        _code(50074, "User needs to use a strong authentication method."),
    ),
    (
        "mfa_push_denied.yml",
        "signin",
        _set(
            properties__status={
                "errorCode": 500121,
                "additionalDetails": "MFA denied; user declined the authentication",
            }
        ),
        _set(
            properties__status={
                "errorCode": 500121,
                "additionalDetails": "MFA required in Azure AD",
            }
        ),
    ),
    (
        "legacy_client_sign_in.yml",
        "signin",
        _set(properties__clientAppUsed="IMAP4"),
        _set(properties__clientAppUsed="Mobile Apps and Desktop clients"),
    ),
    (
        "device_code_sign_in.yml",
        "signin",
        _set(properties__authenticationProtocol="deviceCode"),
        _set(properties__authenticationProtocol="ropc"),
    ),
    (
        "admin_password_reset.yml",
        "audit",
        _audit("Reset user password", properties__category="UserManagement"),
        _set(properties__targetResources__0__userPrincipalName="svc-backup@contoso.com"),
    ),
    (
        "tenant_wide_admin_consent.yml",
        "audit",
        _both(
            _audit("Consent to application"),
            _modified(
                ("ConsentContext.IsAdminConsent", '"True"'),
                ("ConsentContext.OnBehalfOfAll", '"True"'),
            ),
        ),
        _modified(
            ("ConsentContext.IsAdminConsent", '"True"'),
            ("ConsentContext.OnBehalfOfAll", '"False"'),
        ),
    ),
    (
        "security_info_registered_by_admin.yml",
        "audit",
        _audit(
            "Admin registered security info",
            properties__category="UserManagement",
            properties__loggedByService="Authentication Methods",
        ),
        _audit("User registered security info"),
    ),
    (
        "domain_authentication_set.yml",
        "audit",
        _audit("Set domain authentication"),
        _audit("Set federation settings on domain"),
    ),
    (
        "conditional_access_policy_deleted.yml",
        "audit",
        _audit("Delete conditional access policy"),
        _set(properties__result="failure"),
    ),
    (
        "app_password_credential_added.yml",
        "audit",
        _both(
            _audit("Update application – Certificates and secrets management "),
            _modified(("KeyDescription", _KEY.format("Password"))),
        ),
        _modified(("KeyDescription", _KEY.format("AsymmetricX509Cert"))),
    ),
    (
        "anonymous_or_malicious_address.yml",
        "risk",
        _set(properties__riskEventType="anonymizedIPAddress"),
        _set(properties__riskEventType="unfamiliarFeatures"),
    ),
    (
        "leaked_credentials_high.yml",
        "risk",
        _set(properties__riskEventType="leakedCredentials", properties__riskLevel="high"),
        _set(properties__riskLevel="medium"),
    ),
    (
        "atypical_travel.yml",
        "risk",
        _set(properties__riskEventType="unlikelyTravel"),
        _set(properties__riskEventType="newCountry"),
    ),
    (
        "permanent_assignment_outside_pim.yml",
        "audit",
        _audit("Add member to role outside of PIM (permanent)", properties__loggedByService="PIM"),
        _set(properties__loggedByService="Core Directory"),
    ),
]


@pytest.fixture(scope="module")
def rules() -> dict[str, SigmaDetection]:
    return {
        load.path.name: load.rule
        for load in load_sigma_rules(SHAPES)
        if isinstance(load.rule, SigmaDetection)
    }


def test_every_loaded_rule_is_fired_here_or_by_the_replay() -> None:
    loaded = {name for name, reason in SHAPES_EXPECTED.items() if reason == LOADED}
    here = {name for name, *_ in CASES}
    assert here | HITS == loaded
    assert not here & HITS


def _fires(rule: SigmaDetection, record: dict[str, Any], fields: dict[str, Any]) -> bool:
    fields = dict(fields)
    event = example_event(fields.pop("log_set"), raw=msgspec.json.encode(record), **fields)
    return bool(list(rule.evaluate(event, NoContext())))


@pytest.mark.parametrize(
    ("name", "base", "match", "near"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fires_on_its_record_and_not_next_to_it(
    rules: dict[str, SigmaDetection],
    name: str,
    base: str,
    match: Edit,
    near: Edit,
) -> None:
    path, fields = _BASES[base]
    record: dict[str, Any] = json.loads((AZURE / path).read_text("utf-8"))
    assert not _fires(rules[name], record, fields), "the base record must not match already"
    match(record)
    assert _fires(rules[name], record, fields)
    near(record)
    assert not _fires(rules[name], record, fields)
